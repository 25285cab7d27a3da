"""Microsoft Teams connector (type ``teams``, source slug ``msteams``) via Microsoft Graph.

The class is `connectors.teams.connector.TeamsConnector`; it is registered through the
``lxhub.connectors`` entry point and nothing here registers itself at import.
"""

from __future__ import annotations
