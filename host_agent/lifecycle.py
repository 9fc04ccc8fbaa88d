"""The VM's lifecycle through libvirt: the only module that imports ``libvirt``.

Every libvirt error is converted here into a :mod:`host_agent.errors` class with a
message naming the domain and the operation, so callers never see ``libvirtError``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import libvirt
import libvirt_qemu  # type: ignore[import-untyped]  # ships without stubs

from host_agent.domain import with_uuid
from host_agent.errors import (
    DomainDefinitionError,
    DomainNotFound,
    DomainOperationError,
    HostAgentError,
    HypervisorUnavailable,
    ShutdownTimeout,
    UnsupportedOperation,
)


class VmState(StrEnum):
    """A domain's state as libvirt reports it, plus ``absent`` for an undefined domain."""

    NOSTATE = "nostate"
    RUNNING = "running"
    BLOCKED = "blocked"
    PAUSED = "paused"
    SHUTDOWN = "shutting-down"
    SHUTOFF = "shutoff"
    CRASHED = "crashed"
    PMSUSPENDED = "pmsuspended"
    ABSENT = "absent"


ACTIVE_STATES = frozenset({VmState.RUNNING, VmState.BLOCKED, VmState.PAUSED, VmState.SHUTDOWN})
_STATES = list(VmState)[:8]
_SHUTOFF_REASONS = [
    "unknown",
    "shutdown",
    "destroyed",
    "crashed",
    "migrated",
    "saved",
    "failed",
    "from-snapshot",
    "daemon",
]
_RUNNING_REASONS = [
    "unknown",
    "booted",
    "migrated",
    "restored",
    "from-snapshot",
    "unpaused",
    "migration-canceled",
    "save-canceled",
    "wakeup",
    "crashed",
    "postcopy",
]
_EVENTS = [
    "defined",
    "undefined",
    "started",
    "suspended",
    "resumed",
    "stopped",
    "shutdown",
    "pmsuspended",
    "crashed",
]
_CONNECTION_ERRORS = frozenset(
    {
        libvirt.VIR_ERR_INVALID_CONN,
        libvirt.VIR_ERR_NO_CONNECT,
        libvirt.VIR_ERR_RPC,
        libvirt.VIR_ERR_SYSTEM_ERROR,
        libvirt.VIR_ERR_AUTH_FAILED,
    }
)
_XML_ERRORS = frozenset(
    {
        libvirt.VIR_ERR_XML_ERROR,
        libvirt.VIR_ERR_XML_DETAIL,
        libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
        libvirt.VIR_ERR_XML_INVALID_SCHEMA,
    }
)


@dataclass(frozen=True)
class DomainStatus:
    """The VM's state and the reason libvirt gives for it."""

    name: str
    state: VmState
    reason: str

    @property
    def active(self) -> bool:
        """True when QEMU runs for this domain (running, paused or shutting down)."""
        return self.state in ACTIVE_STATES


@dataclass(frozen=True)
class LifecycleEvent:
    """One libvirt lifecycle event, e.g. stopped/crashed or started/booted."""

    domain: str
    event: str
    detail: int
    at: float = field(default_factory=time.monotonic)

    @property
    def stop_reason(self) -> str:
        """For a stopped event: shutdown, destroyed, crashed, failed, ...; else ''."""
        if self.event != "stopped":
            return ""
        return _name(_SHUTOFF_REASONS[1:], self.detail)


EventHandler = Callable[[LifecycleEvent], None]


def _name(names: list[str], index: int) -> str:
    return names[index] if 0 <= index < len(names) else f"code-{index}"


_loop_lock = threading.Lock()
_loop_thread: threading.Thread | None = None


def _ignore_error(_ctx: object, _err: object) -> None:
    # libvirt prints every error to stderr by default; ours are raised as exceptions.
    return None


def ensure_event_loop() -> None:
    """Register libvirt's default event loop once per process and run it on a thread."""
    global _loop_thread
    with _loop_lock:
        if _loop_thread is not None:
            return
        libvirt.registerErrorHandler(_ignore_error, None)
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        _loop_thread = threading.Thread(target=run, name="libvirt-events", daemon=True)
        _loop_thread.start()


class Hypervisor:
    """One libvirt connection, with events delivered to ``on_event`` from libvirt's thread."""

    def __init__(self, uri: str, *, on_event: EventHandler | None = None) -> None:
        self.uri = uri
        self.on_event = on_event
        self._conn: Any = None
        self._callback_id: int | None = None

    def open(self) -> None:
        """Open (or reopen) the connection and subscribe to lifecycle events."""
        ensure_event_loop()
        self.close()
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as e:
            raise HypervisorUnavailable(
                f"cannot connect to libvirt at {self.uri}: {e.get_error_message()}", uri=self.uri
            ) from e
        self._conn = conn
        if self.on_event is not None:
            try:
                self._callback_id = conn.domainEventRegisterAny(
                    None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._dispatch, None
                )
            except libvirt.libvirtError as e:
                raise self._convert(e, "subscribe to events", None) from e

    def close(self) -> None:
        """Drop the connection (errors on the way out do not matter)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with suppress(libvirt.libvirtError):
            if self._callback_id is not None:
                conn.domainEventDeregisterAny(self._callback_id)
        self._callback_id = None
        with suppress(libvirt.libvirtError):
            conn.close()

    @property
    def alive(self) -> bool:
        """True when the connection is open and libvirt still answers."""
        if self._conn is None:
            return False
        try:
            return bool(self._conn.isAlive())
        except libvirt.libvirtError:
            return False

    def _dispatch(self, _conn: Any, dom: Any, event: int, detail: int, _opaque: Any) -> None:
        if self.on_event is not None:
            self.on_event(LifecycleEvent(dom.name(), _name(_EVENTS, event), detail))

    def _convert(self, e: libvirt.libvirtError, operation: str, name: str | None) -> HostAgentError:
        code = e.get_error_code()
        reason = e.get_error_message() or str(e)
        what = f"domain {name}: " if name else ""
        if code == libvirt.VIR_ERR_NO_DOMAIN:
            return DomainNotFound(f"{what}not defined in libvirt at {self.uri}", domain=name)
        if code in _CONNECTION_ERRORS:
            return HypervisorUnavailable(
                f"{what}cannot {operation}: libvirt connection to {self.uri} lost ({reason})",
                uri=self.uri,
                domain=name,
            )
        if code == libvirt.VIR_ERR_NO_SUPPORT:
            return UnsupportedOperation(
                f"{what}cannot {operation}: the driver of {self.uri} does not support it",
                domain=name,
            )
        if code in _XML_ERRORS:
            return DomainDefinitionError(f"{what}libvirt rejected the XML: {reason}", domain=name)
        return DomainOperationError(
            f"{what}cannot {operation}: {reason}", domain=name, operation=operation
        )

    @contextmanager
    def _calling(self, operation: str, name: str | None = None) -> Iterator[Any]:
        if self._conn is None:
            raise HypervisorUnavailable(
                f"cannot {operation}: not connected to {self.uri}", uri=self.uri, domain=name
            )
        try:
            yield self._conn
        except libvirt.libvirtError as e:
            raise self._convert(e, operation, name) from e

    def _domain(self, conn: Any, name: str) -> Any:
        return conn.lookupByName(name)

    def define(self, xml: str, name: str) -> None:
        """Define the domain, or replace its persistent definition (keeping its UUID)."""
        with self._calling("define the domain", name) as conn:
            try:
                uuid = self._domain(conn, name).UUIDString()
            except libvirt.libvirtError as e:
                if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
            else:
                xml = with_uuid(xml, uuid)
            conn.defineXML(xml)

    def exists(self, name: str) -> bool:
        """True when a domain of this name is defined (or running transient)."""
        try:
            self.status(name)
        except DomainNotFound:
            return False
        return True

    def status(self, name: str) -> DomainStatus:
        """The domain's state and reason; raises DomainNotFound when undefined."""
        with self._calling("read the state", name) as conn:
            code, reason = self._domain(conn, name).state()
        state = _STATES[code] if 0 <= code < len(_STATES) else VmState.NOSTATE
        if state == VmState.SHUTOFF:
            why = _name(_SHUTOFF_REASONS, reason)
        elif state == VmState.RUNNING:
            why = _name(_RUNNING_REASONS, reason)
        else:
            why = str(reason)
        return DomainStatus(name, state, why)

    def start(self, name: str) -> None:
        """Boot the defined domain."""
        with self._calling("start", name) as conn:
            self._domain(conn, name).create()

    def request_shutdown(self, name: str) -> None:
        """Ask the guest to power off (ACPI); returns at once."""
        with self._calling("shut down", name) as conn:
            self._domain(conn, name).shutdown()

    def destroy(self, name: str) -> None:
        """Stop QEMU at once, as pulling the plug would."""
        with self._calling("destroy", name) as conn:
            self._domain(conn, name).destroy()

    def undefine(self, name: str) -> None:
        """Remove the persistent definition (a running domain keeps running)."""
        with self._calling("undefine", name) as conn:
            self._domain(conn, name).undefine()

    def stop(self, name: str, timeout: float, *, force: bool = True) -> str:
        """Shut down gracefully, destroy after ``timeout`` s; say how it ended."""
        if not self.status(name).active:
            return "already off"
        self.request_shutdown(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.status(name).active:
                return "shut down"
            time.sleep(0.2)
        if not force:
            raise ShutdownTimeout(
                f"domain {name}: still running {timeout:g}s after the shutdown request",
                domain=name,
                operation="shut down",
            )
        self.destroy(name)
        return "destroyed after timeout"

    def guest_ping(self, name: str, timeout: int = 2) -> bool | None:
        """Ping qemu-guest-agent: True answered, False silent, None not supported here."""
        with self._calling("ping the guest agent", name) as conn:
            dom = self._domain(conn, name)
        try:
            libvirt_qemu.qemuAgentCommand(dom, '{"execute":"guest-ping"}', timeout, 0)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
                return None
            return False
        return True

    def domain_capabilities(self, machine: str, virttype: str) -> str:
        """libvirt's domain capabilities XML for x86_64 on this machine type."""
        with self._calling("read domain capabilities") as conn:
            return str(conn.getDomainCapabilities(None, "x86_64", machine, virttype))

    def to_native(self, xml: str) -> str:
        """The QEMU command line libvirt would run for this XML (qemu driver only)."""
        with self._calling("convert the XML to a QEMU command line") as conn:
            return str(conn.domainXMLToNative("qemu-argv", xml, 0))
