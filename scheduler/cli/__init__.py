"""The scheduler role's commands: hook, enqueue, status, watch, cancel, retry, spool, run."""
