"""Celery settings. Every line says why; reliability invariants are tested in
tests/workers/test_celeryconfig.py.

The broker URL is not here: `workers.app.configure()` sets it from the validated hub config
(`hub.yaml` / LXHUB_BROKER_URL), so a worker cannot start on a config that `lxhub config check`
would reject.
"""

from __future__ import annotations

# JSON only: pickle on a broker is remote code execution for anyone who can write to Redis.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

# Nobody reads task results; storing them would only grow Redis.
result_backend = None
task_ignore_result = True

# Acknowledge after the task ran, so a worker that dies mid-task leaves the message to be
# redelivered. Safe because every task is idempotent: tasks carry only names, the data sits in
# the store under leases, and statement ids are deterministic.
task_acks_late = True

# A task whose worker process was killed is NOT requeued by Celery: the store's leases already
# bring its data back, and requeueing could loop a poison message forever.
task_reject_on_worker_lost = False

# One message at a time per process: a slow LRS or source must not hold prefetched work that
# another process could do.
worker_prefetch_multiplier = 1

# Redis redelivers an unacknowledged message after this many seconds. Every countdown we ever
# schedule (MAX_COUNTDOWN) and every task time limit must stay below it, or a delayed task would
# be redelivered while still waiting and run twice.
VISIBILITY_TIMEOUT = 3600
broker_transport_options: dict[str, float] = {"visibility_timeout": VISIBILITY_TIMEOUT}
MAX_COUNTDOWN = 3000

# A task that hangs (a source that never answers despite httpx timeouts) is stopped: soft limit
# first so it can release its lease and lock, hard limit as the backstop.
task_soft_time_limit = 240
task_time_limit = 300

# If the broker connection drops, long tasks are cancelled rather than finishing unacknowledged
# work twice after redelivery; and a worker keeps retrying the broker at start.
worker_cancel_long_running_tasks_on_connection_loss = True
broker_connection_retry_on_startup = True

# Separate queues so IT can scale them apart: pollers wait on slow vendor APIs, normalizers are
# CPU-bound, deliverers wait on LRSs.
task_default_queue = "ingest"
task_routes = {
    "hub.poll_connector": {"queue": "poll"},
    "hub.normalize_events": {"queue": "ingest"},
    "hub.deliver_statements": {"queue": "deliver"},
    "hub.flush": {"queue": "deliver"},
    "hub.maintain": {"queue": "poll"},
}
QUEUES = ("poll", "ingest", "deliver")

# Prefork workers restart their child processes now and then so a leak in a vendor SDK cannot
# grow a worker without bound.
worker_max_tasks_per_child = 10000

# Times in logs and ETAs are UTC everywhere.
enable_utc = True
timezone = "UTC"

# Our logging setup (JSON logs) must not be replaced by Celery's.
worker_hijack_root_logger = False

# Tasks are sent with a short publish retry so a broker blip does not fail a webhook answer.
task_publish_retry = True
task_publish_retry_policy = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
