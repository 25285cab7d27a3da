"""lxhub: the connector hub of a corporate learning ecosystem (core and plugin-author API)."""
