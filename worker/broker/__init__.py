"""Redis and Celery as kamado uses them: the app, the job registry, keys, heartbeats, submit."""
