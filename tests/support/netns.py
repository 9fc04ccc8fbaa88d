"""Network namespaces for tests: the three-box tour's own (worker/tour/netns.py)."""

from __future__ import annotations

from worker.tour.netns import IP, Netns, netns_problem

__all__ = ["IP", "Netns", "netns_problem"]
