"""Slack connector (type ``slack``): the Events API over ``POST /webhooks/{id}``.

The class is `connectors.slack.connector.SlackConnector`; it is registered through the
``lxhub.connectors`` entry point and nothing here registers itself at import.
"""

from __future__ import annotations
