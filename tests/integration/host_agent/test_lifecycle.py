"""The libvirt adapter against libvirt's own test driver: lifecycle, events and errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from host_agent.domain import domain_xml
from host_agent.errors import (
    DomainDefinitionError,
    DomainNotFound,
    DomainOperationError,
    HypervisorUnavailable,
    UnsupportedOperation,
)
from host_agent.lifecycle import Hypervisor, LifecycleEvent, VmState
from tests.integration.host_agent.conftest import TEST_URI, host_settings, wait_for

pytestmark = pytest.mark.integration


class Events:
    """Lifecycle events collected from libvirt's event thread."""

    def __init__(self) -> None:
        self.seen: list[LifecycleEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: LifecycleEvent) -> None:
        with self.lock:
            self.seen.append(event)

    def kinds(self, domain: str) -> list[tuple[str, str]]:
        with self.lock:
            return [(e.event, e.stop_reason) for e in self.seen if e.domain == domain]


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def hv(events: Events) -> Iterator[Hypervisor]:
    hypervisor = Hypervisor(TEST_URI, on_event=events)
    hypervisor.open()
    yield hypervisor
    hypervisor.close()


@pytest.fixture
def defined(hv: Hypervisor, vm_name: str) -> Iterator[str]:
    hv.define(domain_xml(host_settings(vm_name).vm), vm_name)
    yield vm_name
    if hv.status(vm_name).active:
        hv.destroy(vm_name)
    hv.undefine(vm_name)


def test_defined_domain_is_shut_off_until_started(hv: Hypervisor, defined: str) -> None:
    assert hv.status(defined).state is VmState.SHUTOFF
    hv.start(defined)
    status = hv.status(defined)
    assert (status.state, status.reason, status.active) == (VmState.RUNNING, "booted", True)


def test_graceful_stop_reports_how_it_ended(hv: Hypervisor, defined: str) -> None:
    hv.start(defined)
    assert hv.stop(defined, timeout=5) == "shut down"
    assert hv.status(defined).reason == "shutdown"
    assert hv.stop(defined, timeout=5) == "already off"


def test_lifecycle_events_arrive_with_the_stop_reason(
    hv: Hypervisor, defined: str, events: Events, observer: Hypervisor
) -> None:
    hv.start(defined)
    observer.destroy(defined)
    wait_for(lambda: ("stopped", "destroyed") in events.kinds(defined))
    assert ("started", "") in events.kinds(defined)


def test_redefining_updates_the_persistent_definition(hv: Hypervisor, defined: str) -> None:
    changed = host_settings(defined).vm.model_copy(update={"memory_mib": 1024})
    hv.define(domain_xml(changed), defined)
    assert hv.status(defined).state is VmState.SHUTOFF


def test_unknown_domain_is_domain_not_found_naming_it(hv: Hypervisor) -> None:
    with pytest.raises(DomainNotFound, match="domain nope: not defined in libvirt at test"):
        hv.status("nope")
    assert not hv.exists("nope")


def test_starting_a_running_domain_is_an_operation_error(hv: Hypervisor, defined: str) -> None:
    hv.start(defined)
    with pytest.raises(DomainOperationError) as info:
        hv.start(defined)
    assert info.value.operation == "start"
    assert f"domain {defined}: cannot start" in str(info.value)


def test_broken_xml_is_a_definition_error(hv: Hypervisor) -> None:
    with pytest.raises(DomainDefinitionError, match="libvirt rejected the XML"):
        hv.define("<domain type='test'><name>x</name><memory>no</memory></domain>", "x")


def test_test_driver_has_no_guest_agent_and_no_domain_capabilities(
    hv: Hypervisor, defined: str
) -> None:
    hv.start(defined)
    assert hv.guest_ping(defined) is None
    with pytest.raises(UnsupportedOperation):
        hv.domain_capabilities("q35", "kvm")


def test_unreachable_libvirt_is_hypervisor_unavailable_naming_the_uri() -> None:
    hypervisor = Hypervisor("qemu+unix:///system?socket=/nonexistent/libvirt-sock")
    with pytest.raises(HypervisorUnavailable, match="cannot connect to libvirt at qemu"):
        hypervisor.open()
    assert not hypervisor.alive


def test_calls_after_close_ask_for_a_reconnect(hv: Hypervisor) -> None:
    hv.close()
    assert not hv.alive
    with pytest.raises(HypervisorUnavailable, match="not connected"):
        hv.status("anything")
    hv.open()
    assert hv.alive
