"""Test helpers shipped with lxhub: conformance kit, pytest plugin and real-LRS launchers."""
