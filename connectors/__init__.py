"""Built-in connector plugins. Empty on purpose: importing it registers nothing."""
