"""The generic, declarative webhook connector (vendors.md 7.6): `connector.GenericWebhookConnector`.

Entry point ``webhook``. Vendor behaviour comes from mapping files (``presets/*.yaml`` or the
instance's own); see ``README.md`` in this package for the format. Importing registers nothing.
"""
