"""Thin Celery tasks: parse arguments, call one function of `hub.pipeline`/`hub.delivery`."""
