"""Cornerstone OnDemand connector (type ``cornerstone``): Reporting API (OData) polling, Edge
webhooks and a CSV file-drop mode.

Nothing is registered at import: the hub finds `CornerstoneConnector` through the
``lxhub.connectors`` entry point
``cornerstone = "connectors.cornerstone.connector:CornerstoneConnector"``.
"""

from __future__ import annotations
