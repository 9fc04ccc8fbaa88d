"""kamado's scheduler role."""
