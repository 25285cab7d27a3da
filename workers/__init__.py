"""lxhub's Celery side: the app, its settings, the beat schedule and thin task modules."""
