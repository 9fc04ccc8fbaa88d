"""Delivery: a spooled or direct submission routed, recorded in the registry and published."""
