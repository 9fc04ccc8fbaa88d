"""Output names from a template over the recorder's metadata (``encode.output_name``).

A template such as ``{title} {start:%Y-%m-%d %H%M}`` names four fields: ``title`` and
``channel`` (text), ``start`` (a time, formatted with ``strftime`` codes, in this
machine's time zone: the scheduler's, which is the recorder's), and ``stem`` (the
recording's file name without its suffix). A template naming another field, using
``!r`` or ``.attr``/``[index]``, or giving a text field a bad format spec is refused when
the config loads (:func:`check_template`).

What a template renders is made safe for any file system a recording is served from,
Samba shares included (:func:`safe_stem`): no ``/`` or NUL, none of the characters
Windows refuses (``<>:"/\\|?*`` become their full-width forms, as Japanese recorders
write them), no control or format characters, no leading dot (so never ``.``, ``..`` or a
hidden or temporary name), no trailing dot or space, no Windows device name (``CON``,
``NUL``, ``COM1``...). :func:`~worker.outputs.names.fit_name` then keeps it within 255
bytes. A recording that lacks a field the template names (a file given to ``kamado
enqueue`` has no title) is named by its (safe) stem. The default, ``{stem}``, is made
safe the same way: ``a:b?.ts`` becomes ``a：b？.mp4``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from string import Formatter

DEFAULT_TEMPLATE = "{stem}"
TEXT_FIELDS = ("title", "channel", "stem")
TIME_FIELDS = ("start",)
FIELDS = (*TEXT_FIELDS, *TIME_FIELDS)
FALLBACK_STEM = "recording"

# What Windows (and so a Samba share seen from Windows) refuses in a name, and the
# full-width character Japanese recorders put in its place.
WINDOWS_CHARS = {
    "<": "\uff1c",
    ">": "\uff1e",
    ":": "\uff1a",
    '"': "\uff02",
    "/": "\uff0f",
    "\\": "\uff3c",
    "|": "\uff5c",
    "?": "\uff1f",
    "*": "\uff0a",
}
WINDOWS_TABLE = str.maketrans(WINDOWS_CHARS)
# Control (Cc), format (Cf: bidi overrides, zero-width) and lone surrogates (Cs, not UTF-8).
DROPPED_CATEGORIES = ("Cc", "Cf", "Cs")
LINE_BREAKS = "\t\n\r\v\f"  # control characters that become a space
# Leading dots (hidden, ".", "..") and trailing dots or spaces (Windows drops them).
EDGES = re.compile(r"^[.\s]+|[.\s]+$")
DEVICE_NAMES = re.compile(r"(?i)(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])")
SAMPLE = {
    "title": "番組",
    "channel": "ＮＨＫ総合",
    "stem": "rec",
    "start": datetime(2026, 12, 1, 21, 0, tzinfo=UTC),
}


class TemplateError(ValueError):
    """A template that cannot render every recording; the message says why."""


def fields_of(template: str) -> list[tuple[str, str]]:
    """The (field, format spec) pairs a template uses; TemplateError for anything else."""
    try:
        parts = list(Formatter().parse(template))
    except ValueError as e:
        raise TemplateError(f"{template!r}: {e}") from None
    used = []
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in FIELDS:
            shown = "{" + name + "}" if name else "{}"
            raise TemplateError(
                f"{template!r}: unknown field {shown}; the fields are "
                + ", ".join("{" + f + "}" for f in FIELDS)
            )
        if conversion:
            raise TemplateError(f"{template!r}: {{{name}!{conversion}}}: no conversions allowed")
        if "{" in (spec or ""):
            raise TemplateError(f"{template!r}: {{{name}}}: no nested fields in a format spec")
        used.append((name, spec or ""))
    return used


def check_template(template: str) -> str:
    """The template, when it can name every recording; TemplateError naming the problem."""
    if "/" in template or "\0" in template:
        raise TemplateError(
            f"{template!r}: a template names one file, so it must not contain '/' or NUL "
            "(the directory is encode.output_dir)"
        )
    used = fields_of(template)
    try:
        for name, spec in used:
            format(SAMPLE[name], spec)
    except (ValueError, TypeError) as e:
        raise TemplateError(f"{template!r}: bad format spec: {e}") from None
    return template


def safe_stem(text: str) -> str:
    """``text`` as a file name stem any file system (and a Windows client) accepts; empty
    when nothing usable is left (the caller falls back to another stem)."""
    kept = "".join(" " if c in LINE_BREAKS else c for c in text if not _dropped(c))
    text = EDGES.sub("", unicodedata.normalize("NFC", kept).translate(WINDOWS_TABLE))
    head, dot, rest = text.partition(".")
    if DEVICE_NAMES.fullmatch(head.rstrip(" ")):
        text = f"{head}_{dot}{rest}"  # "CON.x" is the device too: "CON_.x" is not
    return text


def _dropped(char: str) -> bool:
    return char not in LINE_BREAKS and unicodedata.category(char) in DROPPED_CATEGORIES


def render_stem(
    template: str,
    *,
    stem: str,
    title: str | None = None,
    channel: str | None = None,
    start: datetime | None = None,
) -> str:
    """The safe stem the template makes for one recording (see the module doc)."""
    fallback = safe_stem(stem) or FALLBACK_STEM
    values: dict[str, object] = {"stem": stem, "title": title, "channel": channel}
    values["start"] = start.astimezone() if start is not None else None
    pieces = []
    for literal, name, spec, _conversion in Formatter().parse(template):
        pieces.append(literal)
        if name is None:
            continue
        value = values.get(name)
        if value is None:
            return fallback
        pieces.append(format(value, spec or ""))
    return safe_stem("".join(pieces)) or fallback
