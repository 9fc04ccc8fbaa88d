"""Encoding a recording while it is being recorded (issue #17): the worker's side."""
