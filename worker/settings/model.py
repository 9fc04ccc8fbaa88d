"""kamado's settings: one TOML file plus KAMADO_* environment variables, validated once.

Every process (worker, scheduler, host agent, guest agent, Flower, CLI) builds one
``Settings`` with :func:`load_settings` at start and passes it down. Unknown keys are
errors, so a misspelt key never silently falls back to a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from worker.errors import ConfigError
from worker.outputs.template import DEFAULT_TEMPLATE, check_template
from worker.profiles import QUEUE_CPU, QUEUE_GPU, Profile
from worker.settings.admin import FlowerSettings, MetricsSettings, NotifySettings
from worker.settings.base import Section
from worker.settings.file import find_config, read_toml
from worker.settings.guest import GuestSettings
from worker.settings.host import HostSettings
from worker.settings.live import LiveSettings
from worker.settings.masking import is_secret_field, shown_scheme
from worker.settings.masking import mask_url as mask_url  # re-exported: callers import it from here
from worker.settings.scheduler import SchedulerSettings
from worker.settings.staging import StagingSettings

__all__ = ["Settings", "load_settings", "mask_url", "spool_dir"]


class EncodeSettings(Section):
    """How ffmpeg is run and where outputs go."""

    default_profile: str = "h264-auto"
    output_dir: Path | None = Field(
        default=None,
        description="Where outputs are written; empty means next to the source.",
    )
    on_conflict: Literal["rename", "refuse"] = Field(
        default="rename",
        description='a second job whose output place is taken: "rename" gives it '
        '"<name> (2).mp4", "refuse" fails it naming both sources',
    )
    replace_existing: bool = Field(
        default=False,
        description="replace a file at the output path that kamado did not write "
        "(false: treat it as taken, per on_conflict)",
    )
    output_name: str = Field(
        default=DEFAULT_TEMPLATE,
        description="the output's name from the recorder's metadata: {title}, {channel}, "
        "{start:%Y-%m-%d %H%M} (strftime codes, local time) and {stem} (the recording's "
        "name); made safe for any file system, Samba shares included",
    )
    delete_source: Literal["never", "after_verified"] = Field(
        default="never",
        description='"after_verified" deletes a recording once its output is verified and '
        "committed and the job is done; never one the recorder flagged with drops, errors, "
        "scrambled packets or a failure, nor one without those counts",
    )
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    render_node: Path = Path("/dev/dri/renderD128")
    vaapi_driver: Literal["", "i965", "iHD"] = Field(
        default="",
        description="LIBVA_DRIVER_NAME for the vaapi backend; i965 on Haswell, iHD on newer.",
    )
    # A 30-minute programme at 1.9 fps software speed takes 8 h; the hard limit covers that.
    soft_time_limit: int = Field(default=30_000, gt=0, description="seconds")
    time_limit: int = Field(default=30_600, gt=0, description="seconds")
    progress_interval: float = Field(default=1.0, gt=0, le=60, description="seconds")
    stall_timeout: float = Field(
        default=300.0, gt=0, description="seconds without ffmpeg progress before it is killed"
    )

    @field_validator("output_name")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_template(value)

    @model_validator(mode="after")
    def _soft_below_hard(self) -> EncodeSettings:
        if self.soft_time_limit >= self.time_limit:
            raise ValueError(
                f"soft_time_limit ({self.soft_time_limit}) must be below "
                f"time_limit ({self.time_limit}) so ffmpeg can be killed cleanly"
            )
        return self


class VerifySettings(Section):
    """What an output must satisfy before a job is done."""

    duration_tolerance_s: float = Field(default=2.0, ge=0)
    duration_tolerance_ratio: float = Field(default=0.01, ge=0, le=0.5)
    sync_tolerance_s: float = Field(
        default=0.25,
        ge=0,
        description=(
            "how far each audio track's end may move against the video's end, compared "
            "with the source: more is audio out of sync"
        ),
    )
    decode: Literal["full", "keyframes", "off"] = Field(
        default="keyframes",
        description=(
            "decode check of the output: full decodes every frame, keyframes only I-frames "
            "(fast), off trusts the container"
        ),
    )


class WorkerSettings(Section):
    """The Celery worker on this machine."""

    queues: list[str] = Field(default_factory=lambda: [QUEUE_GPU, QUEUE_CPU])
    concurrency: int = Field(default=1, ge=1, le=16)
    backends: list[Literal["qsv", "vaapi", "x264"]] | Literal["auto"] = Field(
        default="auto",
        description="backends this worker may use; auto proves each with a one-frame encode",
    )
    hostname: str = ""
    probe_max_age: float = Field(
        default=7 * 86400.0,
        ge=0,
        description=(
            "seconds a backend probe result is reused at worker start while ffmpeg, the "
            "render node, the drivers and kamado are unchanged; 0 probes at every start"
        ),
    )
    watchdog_silence: float = Field(
        default=120.0,
        ge=0,
        le=3600,
        description=(
            "seconds a worker with a free slot may receive nothing while its queues hold "
            "ready messages before its watchdog acts; 0 turns the watchdog off"
        ),
    )
    watchdog_action: Literal["restart", "exit"] = Field(
        default="restart",
        description=(
            "restart: restart the consumer, and exit non-zero if it is still silent one "
            "period later; exit: exit non-zero at once so systemd restarts the worker"
        ),
    )

    @field_validator("watchdog_silence")
    @classmethod
    def _silence_not_too_short(cls, value: float) -> float:
        if 0 < value < 5:
            raise ValueError(
                "must be 0 (off) or at least 5 seconds: shorter restarts a healthy "
                "consumer between two messages"
            )
        return value


class JobsSettings(Section):
    """The job registry: leases, attempts, the reconciler."""

    lease_ttl: float = Field(
        default=60.0, ge=2, le=3600, description="seconds an attempt's lease lives unrenewed"
    )
    max_attempts: int = Field(default=3, ge=1, le=20)
    retry_delay: float = Field(default=30.0, ge=0, description="seconds before a retry")
    reconcile_interval: float = Field(
        default=30.0, gt=0, le=3600, description="seconds between reconciler passes"
    )


class BrokerSettings(Section):
    """Transport details shared by every process on the broker."""

    # Must exceed encode.time_limit: a running task is redelivered after this (no renewal).
    visibility_timeout: int = Field(default=36_000, gt=0, description="seconds")
    socket_timeout: float = Field(default=30.0, gt=0)
    health_check_interval: int = Field(default=25, ge=0)


class Settings(BaseSettings):
    """Everything kamado reads from its config file and environment."""

    model_config = SettingsConfigDict(
        env_prefix="KAMADO_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    broker_url: SecretStr | None = Field(
        default=None,
        description="redis://kamado:PASSWORD@host:port/db; empty starts the embedded broker",
    )
    result_backend_url: SecretStr | None = Field(default=None, description="defaults to broker_url")
    state_dir: Path = Field(
        default=Path("~/.local/state/kamado"),
        description="embedded broker data, probe cache, spool",
    )
    encode: EncodeSettings = EncodeSettings()
    verify: VerifySettings = VerifySettings()
    worker: WorkerSettings = WorkerSettings()
    broker: BrokerSettings = BrokerSettings()
    jobs: JobsSettings = JobsSettings()
    host: HostSettings = HostSettings()
    guest: GuestSettings = GuestSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    flower: FlowerSettings = FlowerSettings()
    metrics: MetricsSettings = MetricsSettings()
    notify: NotifySettings = NotifySettings()
    staging: StagingSettings = StagingSettings()
    live: LiveSettings = LiveSettings()
    profiles: dict[str, Profile] = Field(
        default_factory=dict, description="user profiles, added to (or replacing) the built-ins"
    )

    @field_validator("state_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("broker_url", "result_backend_url")
    @classmethod
    def _url_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        raw = value.get_secret_value()
        if not raw.startswith(("redis://", "rediss://", "redis+socket://")):
            raise ValueError(
                f"unsupported scheme {shown_scheme(raw)}; use redis://, rediss:// or "
                "redis+socket://"
            )
        return value

    @model_validator(mode="after")
    def _visibility_above_hard_limit(self) -> Settings:
        if self.broker.visibility_timeout <= self.encode.time_limit:
            raise ValueError(
                f"broker.visibility_timeout ({self.broker.visibility_timeout}) must exceed "
                f"encode.time_limit ({self.encode.time_limit}), or Redis hands a running "
                "encode to a second worker"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment overrides the file; the file arrives as init kwargs (see load_settings).
        return (env_settings, init_settings)

    @property
    def embedded(self) -> bool:
        """True when no broker is configured and kamado runs its own."""
        return self.broker_url is None


def describe_validation_error(error: ValidationError, source: str) -> list[str]:
    """One line per bad field: the dotted field name, the value and the reason."""
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            problems.append(f"{field}: unknown key (in {source})")
            continue
        value = item.get("input")
        if is_secret_field(field) and not isinstance(value, dict):
            value = mask_url(value) if isinstance(value, str) and "url" in field else "***"
        shown = "" if isinstance(value, dict | list) else f" = {value!r}"
        reason = item["msg"].removeprefix("Value error, ")
        problems.append(f"{field}{shown}: {reason}")
    return problems


def spool_dir(settings: Settings) -> Path:
    """The spool directory: ``scheduler.spool_dir``, else ``<state_dir>/spool``."""
    return settings.scheduler.spool_dir or settings.state_dir / "spool"


def load_settings(config: Path | None = None) -> Settings:
    """Build the process's one Settings from the config file and KAMADO_* variables."""
    path = find_config(config)
    data = read_toml(path) if path else {}
    source = str(path) if path else "environment"
    try:
        return Settings(**data)
    except ValidationError as e:
        problems = describe_validation_error(e, source)
        raise ConfigError(
            f"invalid configuration ({source}): " + "; ".join(problems), problems=problems
        ) from e


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data with secrets masked (for `config check`)."""
    data: dict[str, Any] = settings.model_dump(mode="json")
    for key in ("broker_url", "result_backend_url"):
        secret = getattr(settings, key)
        data[key] = mask_url(secret.get_secret_value()) if secret else None
    return data
