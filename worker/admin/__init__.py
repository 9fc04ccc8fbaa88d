"""What admins watch: Flower, Prometheus metrics, task events and webhook notifications."""
