"""What each recorder hands a post-recording hook, validated into a :class:`HookRequest`.

EPGStation v2 and EDCB pass environment variables, Chinachu passes two arguments; see
the recorder reference for the contracts. EPGStation writes JSON ``null`` as the string
"null"; both "null" and the empty string mean absent here.

This module imports pydantic and nothing heavier: the recorder hook validates its input
here, writes the request to the spool and returns, and delivery turns the request into
a job later (:func:`scheduler.recorders.hook_input`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scheduler.errors import HookInputError

ABSENT = ("", "null", "undefined")
REQUEST_KIND: Literal["hook"] = "hook"
Origin = Literal["epgstation", "chinachu", "edcb"]


def _absent_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip() in ABSENT else value


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


class HookRequest(BaseModel):
    """A recorder's valid hook input as the spool keeps it until delivery makes a job.

    ``variables`` holds exactly what the recorder passed that kamado reads (its
    environment variables, or Chinachu's two arguments), so delivery parses the same
    input again; ``path`` is the recording, made absolute against the hook's directory.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["hook"] = REQUEST_KIND
    schema_version: int = 1
    origin: Origin
    path: str = Field(min_length=1)
    failed: bool = False
    variables: dict[str, str] = Field(default_factory=dict)
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def _read_env(model: type[_Env], env: Mapping[str, str], recorder: str, key: str, hint: str) -> Any:
    try:
        return model.model_validate(dict(env))
    except ValidationError as e:
        if any(i["loc"] == (key,) for i in e.errors()):
            raise HookInputError(
                f"{recorder}: {key} is not set{hint}", recorder=recorder, field=key
            ) from None
        raise _problem(recorder, e, "variable") from None


def _picked(model: type[BaseModel], env: Mapping[str, str]) -> dict[str, str]:
    return {name: env[name] for name in model.model_fields if name in env}


def read_epgstation(env: Mapping[str, str]) -> EpgstationEnv:
    """EPGStation's variables, validated; a missing or bad one is a HookInputError."""
    hint = (
        " (or is null): use `kamado hook epgstation` as recordingFinishCommand or "
        "recordingFailedCommand, whose environment names the recording"
    )
    data: EpgstationEnv = _read_env(EpgstationEnv, env, "epgstation", "RECPATH", hint)
    return data


def read_chinachu(rec_path: str, program_json: str) -> ChinachuProgram:
    """Chinachu's programme JSON, validated; bad JSON or an empty path is a HookInputError."""
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
        return ChinachuProgram.model_validate(raw)
    except ValidationError as e:
        raise _problem("chinachu", e, "PROGRAM_JSON field") from None


def read_edcb(env: Mapping[str, str]) -> EdcbEnv:
    """EDCB's variables, validated; a missing FilePath is a HookInputError."""
    hint = ": use `kamado hook edcb` from PostRecEnd.sh (or a reservation's post-recording batch)"
    data: EdcbEnv = _read_env(EdcbEnv, env, "edcb", "FilePath", hint)
    return data


def hook_request(
    origin: Origin,
    *,
    env: Mapping[str, str],
    args: list[str],
    path: str,
    failed: bool = False,
) -> HookRequest:
    """The request to spool for one hook run (input already read by the ``read_*`` above)."""
    if origin == "chinachu":
        variables = {"REC_PATH": args[0], "PROGRAM_JSON": args[1]}
    else:
        variables = _picked(EpgstationEnv if origin == "epgstation" else EdcbEnv, env)
    for name, value in variables.items():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise HookInputError(
                f"{origin}: {name} is not valid UTF-8 text", recorder=origin, field=name
            ) from None
    return HookRequest(origin=origin, path=path, failed=failed, variables=variables)
