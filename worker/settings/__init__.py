"""kamado's settings: the config file, KAMADO_* variables and every section's model."""
