"""Output and temporary file names that always fit a file system's 255-byte limit.

A name longer than :data:`MAX_NAME_BYTES` is cut on a UTF-8 character boundary and gets
``~`` and six hex digits of the full stem's sha256, so two long titles that share their
first 240 bytes still get different, stable names. A second output that maps to a taken
name is ``<stem> (2).mp4``, then ``(3)``..., the number kept inside the limit.
"""

from __future__ import annotations

import hashlib

MAX_NAME_BYTES = 255
SUFFIX = ".mp4"
TEMP_PREFIX = ".kamado-"
HASH_CHARS = 6


def cut_utf8(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding is at most ``limit`` bytes."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[: max(limit, 0)].decode("utf-8", "ignore")


def fit_name(stem: str, tail: str = "", suffix: str = SUFFIX) -> str:
    """``stem + tail + suffix``, with ``stem`` shortened (and marked) when it is too long."""
    name = f"{stem}{tail}{suffix}"
    if len(name.encode("utf-8", "surrogatepass")) <= MAX_NAME_BYTES:
        return name
    mark = "~" + hashlib.sha256(stem.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    room = MAX_NAME_BYTES - len(f"{mark}{tail}{suffix}".encode("utf-8", "surrogatepass"))
    return f"{cut_utf8(stem, room)}{mark}{tail}{suffix}"


def stem_of(name: str) -> str:
    """A file name without its last suffix (``a.b.ts`` → ``a.b``)."""
    return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name


def split_dir(path: str) -> tuple[str, str]:
    """A path or URI as (everything up to and including the last ``/``, the last part)."""
    head, slash, name = path.rpartition("/")
    return head + slash, name


def numbered(output: str, n: int) -> str:
    """The ``n``-th choice of name for ``output``: itself, then ``<stem> (n).mp4`` (n >= 2)."""
    head, name = split_dir(output)
    stem = stem_of(name)
    tail = f" ({n})" if n > 1 else ""
    if n == 1 and len(name.encode("utf-8", "surrogatepass")) <= MAX_NAME_BYTES:
        return output
    return head + fit_name(stem, tail)


def temp_name(job_id: str, attempt_id: str) -> str:
    """The hidden name one attempt writes to: short, and unique per job and attempt."""
    return f"{TEMP_PREFIX}{job_id}-{attempt_id}{SUFFIX}"


def temp_pattern(job_id: str) -> str:
    """A glob matching every attempt's temporary name for one job."""
    return f"{TEMP_PREFIX}{job_id}-*{SUFFIX}"


def is_temp_name(name: str) -> bool:
    """True for a name kamado writes while an attempt runs."""
    return name.startswith(TEMP_PREFIX) and name.endswith(SUFFIX)
