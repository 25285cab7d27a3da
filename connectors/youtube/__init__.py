"""YouTube connector: the lxhub tracker's player events become xAPI Video Profile statements.

See README.md in this package for admins (settings, learner tokens, CORS, WebSub). Nothing is
registered at import; the entry point is
``youtube = "connectors.youtube.connector:YouTubeConnector"``.
"""

from __future__ import annotations

from connectors.youtube.token import issue_learner_token, verify_learner_token

__all__ = ["issue_learner_token", "verify_learner_token"]
