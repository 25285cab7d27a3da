"""Static assets served by the hub (status page, tracker scripts)."""
