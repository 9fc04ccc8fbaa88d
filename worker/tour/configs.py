"""The three boxes' kamado configs, as a person would write them for this topology.

    recorder 10.214.1.1 ── 10.214.1.2 host ── QEMU user network ── guest 10.0.2.15
    (Redis, sshd, scheduler, hook)   (host agent, libvirt, QEMU)   (kamado guest run)

The guest reaches nothing but two forwards QEMU makes on its user-mode network:
10.0.2.100:6379 → the recorder's Redis and 10.0.2.101:22 → the recorder's sshd.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORDER_ADDR, HOST_ADDR = "10.214.1.1", "10.214.1.2"
GUEST_REDIS, GUEST_SSH = "10.0.2.100", "10.0.2.101"
REDIS_PORT, SSH_PORT = 6379, 22
PROFILE = "h264-auto"  # encode.gpu first, libx264 accepted


def toml_value(value: object) -> str:
    """A TOML literal for a str, number, bool or list of them (JSON's forms are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def toml(top: dict[str, Any], sections: dict[str, dict[str, Any]]) -> str:
    """A config file: top-level keys, then one table per section (dotted names nest)."""
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for name, table in sections.items():
        lines += ["", f"[{name}]", *(f"{k} = {toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Layout:
    """Where each box keeps its files under the tour's directory (the guest's are in RAM)."""

    base: Path

    @property
    def recorded(self) -> Path:
        """The recorder's recordings (EPGStation's recorded/)."""
        return self.base / "recorder" / "recorded"

    @property
    def ssh(self) -> Path:
        """The recorder's sshd: its keys, config and log."""
        return self.base / "recorder" / "ssh"

    @property
    def redis(self) -> Path:
        """The recorder's redis-server: its data, log and unix socket."""
        return self.base / "recorder" / "redis"

    @property
    def embed_root(self) -> Path:
        """libvirt's embedded QEMU driver root on the host."""
        return self.base / "host" / "libvirt"

    @property
    def serial_log(self) -> Path:
        """The guest's serial console, written by QEMU."""
        return self.base / "host" / "guest-serial.log"

    def config(self, box: str) -> Path:
        """The kamado.toml of ``box`` (recorder, host, guest)."""
        return self.base / box / "kamado.toml"


def recorder_config(layout: Layout, password: str) -> str:
    """The recorder: scheduler service, hook, path map to the SFTP location the guest uses."""
    top = {
        "broker_url": f"redis://:{password}@{RECORDER_ADDR}:{REDIS_PORT}/0",
        "state_dir": str(layout.base / "recorder" / "state"),
    }
    sections: dict[str, dict[str, Any]] = {
        "encode": {"default_profile": PROFILE},
        "jobs": {"lease_ttl": 15, "retry_delay": 1, "reconcile_interval": 2},
        "scheduler": {"spool_poll": 0.5},
        # The guest takes a minute to boot and prove x264 under an emulated CPU.
        "scheduler.routing": {"interval": 1, "vm_boot_time": 120},
    }
    path_map = (
        f"\n[[scheduler.path_map]]\nrecorder = {toml_value(str(layout.recorded))}\n"
        'target = "sftp://recorder"\n'
    )
    return toml(top, sections) + path_map


def host_config(layout: Layout, password: str, vm: dict[str, Any]) -> str:
    """The host agent: the VM below, woken for either queue, shut down when idle."""
    top = {"broker_url": f"redis://:{password}@{RECORDER_ADDR}:{REDIS_PORT}/0"}
    host = {
        "libvirt_uri": f"qemu:///embed?root={layout.embed_root}",
        "agent_name": "host",
        "queues": ["encode.gpu", "encode.cpu"],
        "poll_interval": 0.5,
        "idle_shutdown": 6,
        "shutdown_timeout": 60,
        "restart_backoff": 0.5,
        "heartbeat_interval": 1,
    }
    text = toml(top, {"host": host})
    return text + "\n" + _vm_tables(vm)


def _vm_tables(vm: dict[str, Any]) -> str:
    """[host.vm] and its sub-tables from a nested dict (lists of tables as arrays)."""
    plain = {k: v for k, v in vm.items() if not isinstance(v, dict) and k != "shared_dirs"}
    out = toml({}, {"host.vm": plain}).lstrip("\n")
    for name, table in vm.items():
        if isinstance(table, dict):
            out += toml({}, {f"host.vm.{name}": table})
    for share in vm.get("shared_dirs", []):
        out += "\n[[host.vm.shared_dirs]]\n" + toml(share, {})
    return out


def guest_config(layout: Layout, password: str, user: str) -> str:
    """The guest: the broker and the recordings through QEMU's forwards, proving only a
    small sample (HD under TCG takes minutes), serving encode.cpu once x264 is proven."""
    ssh = layout.ssh
    top = {
        "broker_url": f"redis://:{password}@{GUEST_REDIS}:{REDIS_PORT}/0",
        "state_dir": "/var/lib/kamado",
    }
    sections: dict[str, dict[str, Any]] = {
        "staging": {
            "scratch_dir": "/var/tmp/kamado",  # noqa: S108 (the guest's own RAM)
            "min_free_mb": 0,
            "retries": 8,
            "retry_delay": 0.5,
        },
        "staging.locations.recorder": {
            "kind": "sftp",
            "host": GUEST_SSH,
            "port": SSH_PORT,
            "user": user,
            "key_file": str(ssh / "id_ed25519"),
            "known_hosts": str(ssh / "guest_known_hosts"),
            "root": str(layout.recorded),
            "connect_timeout": 5,
            "io_timeout": 10,
        },
        "jobs": {"lease_ttl": 15, "retry_delay": 1},
        "guest": {
            "take_software_work": True,
            "probe_shapes": ["320x240i"],
            "probe_seconds": 0.3,
            "heartbeat_interval": 1,
        },
    }
    return toml(top, sections)
