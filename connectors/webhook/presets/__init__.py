"""Shipped mapping presets (YAML data files). A package only so wheels carry the files."""
