"""The durable spool: submissions waiting on local disk, and their delivery to the broker."""
