"""The host agent's heartbeat names the VM's worker, so routing can read what it proved."""

from __future__ import annotations

from host_agent.agent import Agent
from worker.broker.heartbeat import HostHeartbeat
from worker.settings.host import HostSettings


def test_the_heartbeat_names_the_guest_worker_whose_heartbeat_tells_what_it_proved() -> None:
    settings = HostSettings(guest_hostname="gpu-vm")
    beat = Agent(settings, state=None).heartbeat(None)  # no libvirt: nothing is opened
    assert beat.guest_worker == "celery@gpu-vm" == settings.guest_worker
    assert beat.vm_state == "unknown"


def test_a_heartbeat_from_an_agent_that_names_no_guest_stays_valid() -> None:
    old = '{"schema_version": 1, "name": "h", "vm_state": "running"}'
    assert HostHeartbeat.model_validate_json(old).guest_worker == ""
