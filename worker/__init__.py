"""kamado's worker role and the shared contract: settings, job model, Celery app, errors."""
