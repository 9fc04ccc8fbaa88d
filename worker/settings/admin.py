"""The `[flower]`, `[metrics]` and `[notify]` config sections: what admins watch."""

from __future__ import annotations

import ipaddress
import math
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from worker.settings.base import Section

# Runtime buckets for encodes that take minutes (QSV) to hours (software on a Celeron).
LONG_TASK_BUCKETS = [60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0]
LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def is_loopback(address: str) -> bool:
    """True when ``address`` is reachable only from this machine."""
    if address.strip().lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def parse_basic_auth(raw: str) -> list[str]:
    """``user:password[,user2:password2]`` as Flower's list; ValueError names the bad entry."""
    entries = [entry.strip() for entry in raw.split(",")]
    for number, entry in enumerate(entries, 1):
        user, sep, password = entry.partition(":")
        if not sep or not user or not password:
            raise ValueError(
                f"entry {number} is not user:password (a comma separates users, "
                "so a password cannot contain one)"
            )
    return entries


class FlowerSettings(Section):
    """Settings of `kamado flower`: address, credentials, persistence, metrics buckets."""

    address: str = Field(
        default="127.0.0.1",
        description="interface to bind; 0.0.0.0 for every interface (needs basic_auth)",
    )
    port: int = Field(default=5555, ge=1, le=65535)
    basic_auth: SecretStr | None = Field(
        default=None,
        description=(
            "user:password[,user2:password2]; also KAMADO_FLOWER_BASIC_AUTH. Required "
            "unless Flower is bound to loopback on the one-box embedded broker"
        ),
    )
    cookie_secret: SecretStr | None = Field(
        default=None, description="signs Flower's cookies; empty means random at each start"
    )
    certfile: Path | None = Field(
        default=None, description="TLS certificate (with keyfile); else put a TLS proxy in front"
    )
    keyfile: Path | None = None
    url_prefix: str = Field(default="", description="path prefix behind a reverse proxy")
    xheaders: bool = Field(
        default=False, description="trust X-Real-Ip and X-Scheme from a reverse proxy"
    )
    persistent: bool = Field(
        default=False, description="keep Flower's task history across restarts"
    )
    db: Path | None = Field(
        default=None, description="Flower's state file; empty means <state_dir>/flower/flower.db"
    )
    state_save_interval: int = Field(
        default=60_000, ge=0, description="milliseconds between state saves (persistent only)"
    )
    max_tasks: int = Field(default=10_000, ge=100, description="tasks kept in memory")
    purge_offline_workers: int | None = Field(
        default=None, ge=1, description="seconds after which an offline worker is forgotten"
    )
    read_only: bool = Field(
        default=False, description="refuse control calls (shutdown, revoke, pool resize)"
    )
    task_runtime_metric_buckets: list[float] = Field(
        default_factory=lambda: list(LONG_TASK_BUCKETS),
        min_length=1,
        description="seconds; buckets of flower_task_runtime_seconds (+Inf is added)",
    )

    @field_validator("basic_auth")
    @classmethod
    def _credentials(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parse_basic_auth(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> FlowerSettings:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("certfile and keyfile go together: set both or neither")
        return self

    @field_validator("url_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return value.strip("/")

    @field_validator("task_runtime_metric_buckets")
    @classmethod
    def _buckets(cls, value: list[float]) -> list[float]:
        finite = [v for v in value if not math.isinf(v)]
        if any(v <= 0 for v in finite) or finite != sorted(set(finite)):
            raise ValueError("buckets must be positive and strictly increasing")
        return finite


class MetricsSettings(Section):
    """Settings of kamado's Prometheus endpoint, served by the scheduler."""

    enabled: bool = True
    address: str = Field(
        default="127.0.0.1", description="interface to bind; 0.0.0.0 for a remote Prometheus"
    )
    port: int = Field(default=9808, ge=1, le=65535)
    job_scan_limit: int = Field(
        default=20_000,
        ge=100,
        description="newest jobs read per scrape for the by-state and failure counts",
    )


class NotifySettings(Section):
    """Settings of the webhook POSTed when a job fails (and, optionally, succeeds)."""

    url: SecretStr | None = Field(
        default=None, description="http(s) URL to POST JSON to; empty disables notifications"
    )
    on_failure: bool = True
    on_success: bool = False
    secret: SecretStr | None = Field(
        default=None,
        description="signs each body: X-Kamado-Signature: sha256=<HMAC of the body>",
    )
    timeout: float = Field(default=10.0, gt=0, le=120, description="seconds per POST")
    max_attempts: int = Field(default=8, ge=1, le=50, description="POSTs before giving up")
    backoff: float = Field(default=2.0, gt=0, description="seconds before the first retry")
    backoff_max: float = Field(default=300.0, gt=0, description="longest wait between retries")
    queue_size: int = Field(
        default=1000, ge=1, description="notifications waiting to be sent; the oldest is dropped"
    )

    @field_validator("url")
    @classmethod
    def _http(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        raw = value.get_secret_value().strip()
        if not raw.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return SecretStr(raw)
