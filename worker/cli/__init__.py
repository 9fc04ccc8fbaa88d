"""The `kamado` command line: the root app and the worker role's commands."""
