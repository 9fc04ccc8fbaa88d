"""What each recorder hands a post-recording hook, validated into a :class:`HookRequest`.

EPGStation v2 and EDCB pass environment variables, Chinachu passes two arguments; see
the recorder reference for the contracts. EPGStation writes JSON ``null`` as the string
"null"; both "null" and the empty string mean absent here.

The recorder hook validates its input here, writes the request to the spool and
returns; delivery turns the request into a job later (:func:`scheduler.recorders.
hook_input`), validating it again with the same schemas. They are written for pydantic's
validation core (``pydantic_core``) directly: the hook then loads pydantic's validator
without its model layer, which costs a recorder more start-up time than all the rest of
the hook (about 0.13 s of CPU on the development VM).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, TypedDict, cast

from pydantic_core import SchemaValidator, ValidationError, to_json
from pydantic_core import core_schema as cs

from scheduler.errors import HookInputError
from scheduler.paths import require_utf8

ABSENT = ("", "null", "undefined")
REQUEST_KIND = "hook"
Origin = Literal["epgstation", "chinachu", "edcb"]


def _absent_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip() in ABSENT else value


def _required(schema: cs.CoreSchema) -> cs.TypedDictField:
    """A field that must be present and not "null"."""
    return cs.typed_dict_field(cs.no_info_before_validator_function(_absent_to_none, schema))


def _optional(schema: cs.CoreSchema) -> cs.TypedDictField:
    """A field that may be missing, empty or "null" (all None)."""
    nullable = cs.no_info_before_validator_function(_absent_to_none, cs.nullable_schema(schema))
    return cs.typed_dict_field(cs.with_default_schema(nullable, default=None), required=False)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("expected an ISO 8601 time with its offset")
    return value


TEXT = cs.str_schema()
COUNT = cs.int_schema(ge=0)
MILLISECONDS = cs.int_schema(ge=0)


class EpgstationVars(TypedDict):
    """The variables EPGStation v2 sets for recordingFinishCommand and recordingFailedCommand."""

    RECPATH: str
    RECORDEDID: str | None
    NAME: str | None
    CHANNELNAME: str | None
    CHANNELTYPE: str | None
    STARTAT: int | None  # ms
    ENDAT: int | None  # ms
    DROP_CNT: int | None
    ERROR_CNT: int | None
    SCRAMBLING_CNT: int | None


EPGSTATION = SchemaValidator(
    cs.typed_dict_schema(
        {
            "RECPATH": _required(cs.str_schema(min_length=1)),
            "RECORDEDID": _optional(TEXT),
            "NAME": _optional(TEXT),
            "CHANNELNAME": _optional(TEXT),
            "CHANNELTYPE": _optional(TEXT),
            "STARTAT": _optional(MILLISECONDS),
            "ENDAT": _optional(MILLISECONDS),
            "DROP_CNT": _optional(COUNT),
            "ERROR_CNT": _optional(COUNT),
            "SCRAMBLING_CNT": _optional(COUNT),
        },
        extra_behavior="ignore",
    )
)


class EpgstationEncodeVars(TypedDict):
    """The variables EPGStation v2 sets for an encode preset's command (EncoderModel)."""

    INPUT: str
    OUTPUT: str
    RECORDEDID: str | None
    NAME: str | None
    CHANNELNAME: str | None
    START_AT: int | None  # ms
    END_AT: int | None  # ms
    DROP_CNT: int | None
    ERROR_CNT: int | None
    SCRAMBLING_CNT: int | None


EPGSTATION_ENCODE = SchemaValidator(
    cs.typed_dict_schema(
        {
            "INPUT": _required(cs.str_schema(min_length=1)),
            "OUTPUT": _required(cs.str_schema(min_length=1)),
            "RECORDEDID": _optional(TEXT),
            "NAME": _optional(TEXT),
            "CHANNELNAME": _optional(TEXT),
            "START_AT": _optional(MILLISECONDS),
            "END_AT": _optional(MILLISECONDS),
            "DROP_CNT": _optional(COUNT),
            "ERROR_CNT": _optional(COUNT),
            "SCRAMBLING_CNT": _optional(COUNT),
        },
        extra_behavior="ignore",
    )
)


class EdcbVars(TypedDict):
    """The macros EDCB's PostRecEnd.sh (or a reservation's batch) gets as variables."""

    FilePath: str
    Title: str | None
    ServiceName: str | None
    StartTime: datetime | None
    DurationSecond: int | None
    RecInfoID: str | None
    Drops: int | None
    Scrambles: int | None
    Result: str | None


EDCB = SchemaValidator(
    cs.typed_dict_schema(
        {
            "FilePath": _required(cs.str_schema(min_length=1)),
            "Title": _optional(TEXT),
            "ServiceName": _optional(TEXT),
            "StartTime": _optional(
                cs.no_info_after_validator_function(_aware, cs.datetime_schema())
            ),
            "DurationSecond": _optional(COUNT),
            "RecInfoID": _optional(TEXT),
            "Drops": _optional(COUNT),
            "Scrambles": _optional(COUNT),
            "Result": _optional(TEXT),
        },
        extra_behavior="ignore",
    )
)


class ChinachuChannel(TypedDict):
    """The `channel` object of Chinachu's programme JSON."""

    name: str | None
    type: str | None
    channel: str | None


class ChinachuProgram(TypedDict):
    """The programme JSON Chinachu passes as recordedCommand's second argument."""

    id: str | None
    title: str | None
    fullTitle: str | None
    category: str | None
    start: int | None  # ms
    end: int | None  # ms
    channel: ChinachuChannel | None


def _json_optional(schema: cs.CoreSchema) -> cs.TypedDictField:
    """A JSON member that may be missing or null."""
    return cs.typed_dict_field(
        cs.with_default_schema(cs.nullable_schema(schema), default=None), required=False
    )


CHINACHU = SchemaValidator(
    cs.typed_dict_schema(
        {
            "id": _json_optional(TEXT),
            "title": _json_optional(TEXT),
            "fullTitle": _json_optional(TEXT),
            "category": _json_optional(TEXT),
            "start": _json_optional(MILLISECONDS),
            "end": _json_optional(MILLISECONDS),
            "channel": _json_optional(
                cs.typed_dict_schema(
                    {
                        "name": _json_optional(TEXT),
                        "type": _json_optional(TEXT),
                        "channel": _json_optional(TEXT),
                    },
                    extra_behavior="ignore",
                )
            ),
        },
        extra_behavior="ignore",
    )
)

REQUEST = SchemaValidator(
    cs.typed_dict_schema(
        {
            "kind": cs.typed_dict_field(cs.literal_schema([REQUEST_KIND])),
            "schema_version": cs.typed_dict_field(cs.literal_schema([1])),
            "origin": cs.typed_dict_field(cs.literal_schema(["epgstation", "chinachu", "edcb"])),
            "path": cs.typed_dict_field(cs.str_schema(min_length=1)),
            "failed": cs.typed_dict_field(cs.bool_schema()),
            "variables": cs.typed_dict_field(cs.dict_schema(TEXT, TEXT)),
            "received_at": cs.typed_dict_field(
                cs.no_info_after_validator_function(_aware, cs.datetime_schema())
            ),
            # The recorder's start hook (a live job); entries spooled before it say nothing.
            "start": cs.typed_dict_field(
                cs.with_default_schema(cs.bool_schema(), default=False), required=False
            ),
        },
        extra_behavior="forbid",
    )
)


class HookRequest(NamedTuple):
    """A recorder's valid hook input as the spool keeps it until delivery makes a job.

    ``variables`` holds exactly what the recorder passed that kamado reads (its
    environment variables, or Chinachu's two arguments), so delivery parses the same
    input again; ``path`` is the recording, made absolute against the hook's directory.
    ``start`` marks a recording that has just started (EPGStation's recordingStartCommand):
    delivery submits it as a live job.
    """

    origin: Origin
    path: str
    failed: bool
    variables: dict[str, str]
    received_at: datetime
    start: bool = False
    kind: Literal["hook"] = "hook"
    schema_version: Literal[1] = 1

    def to_json(self) -> bytes:
        """The request as the spool stores it."""
        return to_json(REQUEST.validate_python(self._asdict()))

    @classmethod
    def from_json(cls, raw: bytes | str) -> HookRequest:
        """A stored request, validated; raises pydantic_core's ValidationError."""
        return cls(**REQUEST.validate_json(raw))


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


def _read_env(
    validator: SchemaValidator, env: Mapping[str, str], recorder: str, key: str, hint: str
) -> Any:
    try:
        return validator.validate_python(dict(env))
    except ValidationError as e:
        for item in e.errors():
            if item["type"] != "string_unicode":
                continue
            if item["loc"] == (key,):  # a recording named in another encoding (CP932)
                require_utf8(env[key])
            name = ".".join(str(p) for p in item["loc"])
            raise HookInputError(
                f"{recorder}: variable {name} is not valid UTF-8 text (the recorder must "
                "pass UTF-8)",
                recorder=recorder,
                field=name,
            ) from None
        if any(i["loc"] == (key,) for i in e.errors()):
            raise HookInputError(
                f"{recorder}: {key} is not set{hint}", recorder=recorder, field=key
            ) from None
        raise _problem(recorder, e, "variable") from None


def validate_epgstation(env: Mapping[str, str]) -> EpgstationVars:
    """EPGStation's variables, validated; a missing or bad one is a HookInputError."""
    hint = (
        " (or is null): use `kamado hook epgstation` as recordingFinishCommand, "
        "recordingFailedCommand or (with --start) recordingStartCommand, whose environment "
        "names the recording"
    )
    return cast(EpgstationVars, _read_env(EPGSTATION, env, "epgstation", "RECPATH", hint))


def validate_epgstation_encode(env: Mapping[str, str]) -> EpgstationEncodeVars:
    """An encode preset's variables, validated; a missing or bad one is a HookInputError."""
    hint = (
        ": run `kamado epgstation encode` as the cmd of an encode preset in EPGStation's "
        "config.yml, which sets INPUT and OUTPUT (a preset without a suffix has no OUTPUT)"
    )
    for key in ("INPUT", "OUTPUT"):
        if env.get(key, "").strip() in ABSENT:
            raise HookInputError(
                f"epgstation: {key} is not set{hint}", recorder="epgstation", field=key
            )
    data = _read_env(EPGSTATION_ENCODE, env, "epgstation", "INPUT", hint)
    require_utf8(data["OUTPUT"])
    return cast(EpgstationEncodeVars, data)


def validate_chinachu(rec_path: str, program_json: str) -> ChinachuProgram:
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
        return cast(ChinachuProgram, CHINACHU.validate_python(raw))
    except ValidationError as e:
        raise _problem("chinachu", e, "PROGRAM_JSON field") from None


def validate_edcb(env: Mapping[str, str]) -> EdcbVars:
    """EDCB's variables, validated; a missing FilePath is a HookInputError."""
    hint = ": use `kamado hook edcb` from PostRecEnd.sh (or a reservation's post-recording batch)"
    return cast(EdcbVars, _read_env(EDCB, env, "edcb", "FilePath", hint))


def _picked(names: Any, env: Mapping[str, str]) -> dict[str, str]:
    return {name: env[name] for name in names if name in env}


def hook_request(
    origin: Origin,
    *,
    env: Mapping[str, str],
    args: list[str],
    path: str,
    failed: bool = False,
    start: bool = False,
) -> HookRequest:
    """The request to spool for one hook run (input already read by the ``read_*`` above)."""
    if origin == "chinachu":
        variables = {"REC_PATH": args[0], "PROGRAM_JSON": args[1]}
    else:
        names = (EpgstationVars if origin == "epgstation" else EdcbVars).__annotations__
        variables = _picked(names, env)
    for name, value in variables.items():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise HookInputError(
                f"{origin}: {name} is not valid UTF-8 text", recorder=origin, field=name
            ) from None
    return HookRequest(origin, path, failed, variables, datetime.now(UTC), start=start)
