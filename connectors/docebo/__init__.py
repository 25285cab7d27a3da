"""Docebo Learn connector (type ``docebo``): OAuth2 polling of enrollments plus webhooks.

Nothing is registered at import: the hub finds `DoceboConnector` through the ``lxhub.connectors``
entry point ``docebo = "connectors.docebo.connector:DoceboConnector"``.
"""

from __future__ import annotations
