"""A recorder's hook input as a path and a :class:`Recording` (the job's metadata).

The input is validated by :mod:`scheduler.recorder_input` (``validate_epgstation``
and its siblings: light, used by the hook itself); this module's ``epgstation_input`` and
siblings turn the validated input into what a job needs, when the request is delivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from scheduler.errors import HookInputError
from scheduler.recorder_input import (
    HookRequest,
    validate_chinachu,
    validate_edcb,
    validate_epgstation,
    validate_epgstation_encode,
)
from worker.jobs import Recording

EDCB_SUCCESS = "録画終了"


@dataclass(frozen=True)
class HookInput:
    """A finished (or failed) recording as a hook received it; ``live``: one that has just
    started (the start hook), to encode while it records."""

    path: str
    recording: Recording
    failed: bool = False
    flags: list[str] = field(default_factory=list)
    live: bool = False


FIELD_NAMES = {"title": "NAME", "channel": "CHANNELNAME", "recorded_id": "RECORDEDID"}


def _recording(recorder: str, **fields: object) -> Recording:
    """The job's Recording; a value the job contract refuses (a 5000-character title) is a
    HookInputError naming the recorder's variable, not a pydantic traceback."""
    try:
        return Recording.model_validate({"recorder": recorder, **fields})
    except ValidationError as e:
        item = e.errors()[0]
        name = str(item["loc"][0]) if item["loc"] else "recording"
        raise HookInputError(
            f"{recorder}: {FIELD_NAMES.get(name, name)}: {item['msg']}",
            recorder=recorder,
            field=name,
        ) from None


def _from_ms(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, UTC) if value is not None else None


def epgstation_input(env: Mapping[str, str], *, failed: bool, live: bool = False) -> HookInput:
    """EPGStation's environment as a HookInput (``live``: recordingStartCommand's); a missing
    or bad variable is a HookInputError."""
    data = validate_epgstation(env)
    recording = _recording(
        "epgstation",
        recorded_id=data["RECORDEDID"],
        title=data["NAME"],
        channel=data["CHANNELNAME"],
        start=_from_ms(data["STARTAT"]),
        end=_from_ms(data["ENDAT"]),
        drop_count=data["DROP_CNT"],
        error_count=data["ERROR_CNT"],
        scrambling_count=data["SCRAMBLING_CNT"],
    )
    return HookInput(data["RECPATH"], recording, failed=failed, live=live)


@dataclass(frozen=True)
class PresetInput:
    """An EPGStation encode preset's call: the recording, the output it names, the metadata."""

    path: str
    output: str
    recording: Recording


def epgstation_encode_input(env: Mapping[str, str]) -> PresetInput:
    """An encode preset's environment as a PresetInput; a bad variable is a HookInputError."""
    data = validate_epgstation_encode(env)
    recording = _recording(
        "epgstation",
        recorded_id=data["RECORDEDID"],
        title=data["NAME"],
        channel=data["CHANNELNAME"],
        start=_from_ms(data["START_AT"]),
        end=_from_ms(data["END_AT"]),
        drop_count=data["DROP_CNT"],
        error_count=data["ERROR_CNT"],
        scrambling_count=data["SCRAMBLING_CNT"],
    )
    return PresetInput(data["INPUT"], data["OUTPUT"], recording)


def chinachu_input(rec_path: str, program_json: str) -> HookInput:
    """Chinachu's two arguments as a HookInput; bad JSON is a HookInputError."""
    program = validate_chinachu(rec_path, program_json)
    recording = Recording(
        recorder="chinachu",
        recorded_id=program["id"],
        title=program["title"] or program["fullTitle"],
        channel=channel["name"] if (channel := program["channel"]) else None,
        genre=program["category"],
        start=_from_ms(program["start"]),
        end=_from_ms(program["end"]),
    )
    return HookInput(rec_path, recording)


def edcb_input(env: Mapping[str, str]) -> HookInput:
    """EDCB's environment as a HookInput; a missing FilePath is a HookInputError."""
    data = validate_edcb(env)
    start, seconds, result = data["StartTime"], data["DurationSecond"], data["Result"]
    end = None
    if start is not None and seconds is not None:
        end = datetime.fromtimestamp(start.timestamp() + seconds, UTC)
    recording = Recording(
        recorder="edcb",
        recorded_id=data["RecInfoID"],
        title=data["Title"],
        channel=data["ServiceName"],
        start=start,
        end=end,
        drop_count=data["Drops"],
        scrambling_count=data["Scrambles"],
    )
    failed = result is not None and not result.startswith(EDCB_SUCCESS)
    flags = [f"recorder: {result}"] if failed else []
    return HookInput(data["FilePath"], recording, failed=failed, flags=flags)


def hook_input(request: HookRequest) -> HookInput:
    """A spooled hook request parsed again, with the recording's absolute path."""
    variables = request.variables
    if request.origin == "chinachu":
        parsed = chinachu_input(variables["REC_PATH"], variables["PROGRAM_JSON"])
    elif request.origin == "epgstation":
        parsed = epgstation_input(variables, failed=request.failed)
    else:
        parsed = edcb_input(variables)
    return HookInput(
        request.path,
        parsed.recording,
        failed=parsed.failed or request.failed,
        flags=parsed.flags,
        live=request.start,
    )
