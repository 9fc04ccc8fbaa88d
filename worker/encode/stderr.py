"""Reading ffmpeg's failure: hardware missing, bad option, crash, disk full, bad input."""

from __future__ import annotations

import re
import signal

from worker.errors import EncodeErrorKind

# Checked against Debian 12's ffmpeg 5.1 without a GPU, plus messages users report from
# real hardware (see the project's ffmpeg reference). Order matters: specific first.
_PATTERNS: list[tuple[EncodeErrorKind, re.Pattern[str]]] = [
    (
        EncodeErrorKind.OPTION,
        re.compile(
            r"Unrecognized option|Option not found|Unable to parse option value|"
            r"Error setting option|Unknown encoder|No such filter|"
            r"Option '.*' not found|Error applying option|"
            # QSV runtimes refuse some rate-control combinations: a profile problem,
            # not missing hardware.
            r"Selected ratecontrol mode is not supported by the QSV runtime|"
            r"More than one of: \{ constant qscale, lookahead, VCM \} requested"
        ),
    ),
    (
        EncodeErrorKind.HARDWARE,
        re.compile(
            r"Device creation failed|No VA display found|"
            r"Error (initializing|creating) (an internal |a |the )?MFX|"
            r"No device available for (de|en)coder|Device setup failed|"
            r"Failed to (initialise|create) VAAPI|vaInitialize failed|"
            r"Cannot load libmfx|Error initializing the MFX|"
            r"/dev/dri",
            re.IGNORECASE,
        ),
    ),
    (
        EncodeErrorKind.DISK,
        re.compile(r"No space left on device|Disk quota exceeded|File too large"),
    ),
    (
        EncodeErrorKind.INPUT,
        re.compile(
            r"Invalid data found when processing input|"
            r"could not find codec parameters|Output file #0 does not contain any "
            r"stream|Stream map '.*' matches no streams",
            re.IGNORECASE,
        ),
    ),
]


def classify(stderr_tail: str, returncode: int | None) -> EncodeErrorKind:
    """The kind of an ffmpeg failure: option, hardware, disk, input, crash or encode."""
    for kind, pattern in _PATTERNS:
        if pattern.search(stderr_tail):
            return kind
    if returncode is not None and returncode < 0:
        return EncodeErrorKind.CRASH
    return EncodeErrorKind.ENCODE


def describe(returncode: int | None) -> str:
    """How a process ended, in words: 'exit 1' or 'killed by SIGSEGV'."""
    if returncode is None:
        return "did not finish"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit {returncode}"


def reason(stderr_tail: str) -> str:
    """The most telling line of ffmpeg's stderr: the first that matches a known pattern."""
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    for _, pattern in _PATTERNS:
        for line in lines:
            if pattern.search(line):
                return line
    return lines[-1] if lines else "(ffmpeg printed nothing)"
