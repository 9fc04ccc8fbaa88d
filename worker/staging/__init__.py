"""File staging: sources brought to the worker, outputs delivered, local or over SFTP."""
