"""kamado's host agent role."""
