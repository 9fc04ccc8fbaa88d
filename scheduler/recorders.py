"""What each recorder hands a post-recording hook, parsed into a path and a Recording.

EPGStation v2 and EDCB pass environment variables, Chinachu passes two arguments; see
the recorder reference for the contracts. EPGStation writes JSON ``null`` as the string
"null"; both "null" and the empty string mean absent here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scheduler.errors import HookInputError
from worker.jobs import Recording

ABSENT = ("", "null", "undefined")
EDCB_SUCCESS = "録画終了"


@dataclass(frozen=True)
class HookInput:
    """A finished (or failed) recording as a hook received it."""

    path: str
    recording: Recording
    failed: bool = False
    flags: list[str] = field(default_factory=list)


def _absent_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip() in ABSENT else value


def _from_ms(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, UTC) if value is not None else None


def _problem(recorder: str, error: ValidationError, what: str) -> HookInputError:
    item = error.errors()[0]
    name = ".".join(str(p) for p in item["loc"]) or what
    if item["type"] == "missing":
        return HookInputError(
            f"{recorder}: {what} {name} is missing", recorder=recorder, field=name
        )
    value = item.get("input")
    reason = item["msg"].removeprefix("Value error, ")
    return HookInputError(
        f"{recorder}: {what} {name} = {value!r}: {reason}", recorder=recorder, field=name
    )


class _Env(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _absent(cls, value: Any) -> Any:
        return _absent_to_none(value)


class EpgstationEnv(_Env):
    """The variables EPGStation v2 sets for recordingFinishCommand and recordingFailedCommand."""

    RECPATH: str = Field(min_length=1)
    RECORDEDID: str | None = None
    NAME: str | None = None
    CHANNELNAME: str | None = None
    CHANNELTYPE: str | None = None
    STARTAT: int | None = Field(default=None, ge=0, description="ms")
    ENDAT: int | None = Field(default=None, ge=0, description="ms")
    DROP_CNT: int | None = Field(default=None, ge=0)
    ERROR_CNT: int | None = Field(default=None, ge=0)
    SCRAMBLING_CNT: int | None = Field(default=None, ge=0)


def parse_epgstation(env: Mapping[str, str], *, failed: bool) -> HookInput:
    """EPGStation's environment as a HookInput; a missing or bad variable is a HookInputError."""
    try:
        data = EpgstationEnv.model_validate(dict(env))
    except ValidationError as e:
        if any(i["loc"] == ("RECPATH",) for i in e.errors()):
            raise HookInputError(
                "epgstation: RECPATH is not set (or is null): use `kamado hook epgstation` "
                "as recordingFinishCommand or recordingFailedCommand, whose environment "
                "names the recording",
                recorder="epgstation",
                field="RECPATH",
            ) from None
        raise _problem("epgstation", e, "variable") from None
    recording = Recording(
        recorder="epgstation",
        recorded_id=data.RECORDEDID,
        title=data.NAME,
        channel=data.CHANNELNAME,
        start=_from_ms(data.STARTAT),
        end=_from_ms(data.ENDAT),
        drop_count=data.DROP_CNT,
        error_count=data.ERROR_CNT,
        scrambling_count=data.SCRAMBLING_CNT,
    )
    return HookInput(data.RECPATH, recording, failed=failed)


class ChinachuChannel(BaseModel):
    """The `channel` object of Chinachu's programme JSON."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str | None = None
    type: str | None = None
    channel: str | None = None


class ChinachuProgram(BaseModel):
    """The programme JSON Chinachu passes as recordedCommand's second argument."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str | None = None
    title: str | None = None
    fullTitle: str | None = None
    category: str | None = None
    start: int | None = Field(default=None, ge=0, description="ms")
    end: int | None = Field(default=None, ge=0, description="ms")
    channel: ChinachuChannel | None = None


def parse_chinachu(rec_path: str, program_json: str) -> HookInput:
    """Chinachu's two arguments as a HookInput; bad JSON is a HookInputError."""
    if not rec_path.strip():
        raise HookInputError(
            "chinachu: REC_PATH (the first argument) is empty", recorder="chinachu"
        )
    try:
        raw = json.loads(program_json)
    except ValueError as e:
        raise HookInputError(
            f"chinachu: PROGRAM_JSON (the second argument) is not JSON: {e}",
            recorder="chinachu",
            field="PROGRAM_JSON",
        ) from None
    if not isinstance(raw, dict):
        raise HookInputError(
            f"chinachu: PROGRAM_JSON must be a JSON object, got {type(raw).__name__}",
            recorder="chinachu",
            field="PROGRAM_JSON",
        )
    try:
        program = ChinachuProgram.model_validate(raw)
    except ValidationError as e:
        raise _problem("chinachu", e, "PROGRAM_JSON field") from None
    recording = Recording(
        recorder="chinachu",
        recorded_id=program.id,
        title=program.title or program.fullTitle,
        channel=program.channel.name if program.channel else None,
        genre=program.category,
        start=_from_ms(program.start),
        end=_from_ms(program.end),
    )
    return HookInput(rec_path, recording)


class EdcbEnv(_Env):
    """The macros EDCB's PostRecEnd.sh (or a reservation's batch) gets as variables."""

    FilePath: str = Field(min_length=1)
    Title: str | None = None
    ServiceName: str | None = None
    StartTime: datetime | None = None
    DurationSecond: int | None = Field(default=None, ge=0)
    RecInfoID: str | None = None
    Drops: int | None = Field(default=None, ge=0)
    Scrambles: int | None = Field(default=None, ge=0)
    Result: str | None = None

    @field_validator("StartTime")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expected an ISO 8601 time with its offset")
        return value


def parse_edcb(env: Mapping[str, str]) -> HookInput:
    """EDCB's environment as a HookInput; a missing FilePath is a HookInputError."""
    try:
        data = EdcbEnv.model_validate(dict(env))
    except ValidationError as e:
        if any(i["loc"] == ("FilePath",) for i in e.errors()):
            raise HookInputError(
                "edcb: FilePath is not set: use `kamado hook edcb` from PostRecEnd.sh "
                "(or a reservation's post-recording batch)",
                recorder="edcb",
                field="FilePath",
            ) from None
        raise _problem("edcb", e, "variable") from None
    end = None
    if data.StartTime is not None and data.DurationSecond is not None:
        end = datetime.fromtimestamp(data.StartTime.timestamp() + data.DurationSecond, UTC)
    recording = Recording(
        recorder="edcb",
        recorded_id=data.RecInfoID,
        title=data.Title,
        channel=data.ServiceName,
        start=data.StartTime,
        end=end,
        drop_count=data.Drops,
        scrambling_count=data.Scrambles,
    )
    failed = data.Result is not None and not data.Result.startswith(EDCB_SUCCESS)
    flags = [f"recorder: {data.Result}"] if failed else []
    return HookInput(data.FilePath, recording, failed=failed, flags=flags)
