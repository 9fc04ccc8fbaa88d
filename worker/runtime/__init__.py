"""The running worker: the Celery task, its lease, prefetch, the watchdog and pool guard."""
