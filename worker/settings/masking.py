"""Secrets kept out of what kamado prints: URL passwords in every form, and secret fields.

A broker URL carries its password as userinfo (``redis://user:PASSWORD@host``) or as a
query parameter (``redis://host/0?password=PASSWORD``, ``redis+socket:///run/r.sock?
password=...``). :func:`mask_url` hides both, and hides a value it cannot take apart with
certainty (no scheme, a ``/``, ``?`` or ``#`` before the last ``@``) whole, so a
malformed value never reaches an error message.
"""

from __future__ import annotations

import re

MASK = "***"
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
PLAIN_PATH = re.compile(r"(/[A-Za-z0-9._~-]*)*")  # a db number or a socket's path
# Field names (dotted) whose values are never shown: URLs may carry a password.
SECRET_WORDS = ("url", "pass", "secret", "token", "auth", "cookie", "key_phrase")
# Query parameters that carry a secret (any parameter whose name contains one of these).
SECRET_PARAMS = ("pass", "pwd", "secret", "token", "auth", "key", "cred", "sig")


def is_secret_field(field: str) -> bool:
    """True for a (dotted) settings field whose value must never be printed."""
    name = field.lower()
    return any(word in name for word in SECRET_WORDS)


def _query(query: str) -> str:
    parts = []
    for part in re.split(r"([&;])", query):
        if part in ("&", ";") or not part:
            parts.append(part)
            continue
        key, sep, _ = part.partition("=")
        if not sep or any(word in key.lower() for word in SECRET_PARAMS):
            parts.append(f"{key}={MASK}" if sep else MASK)
        else:
            parts.append(part)
    return "".join(parts)


def _plain_authority(authority: str) -> bool:
    """True for ``host``, ``host:port`` or ``[v6]:port`` (nothing that may be a secret)."""
    tail = authority[authority.find("]") + 1 :] if authority.startswith("[") else authority
    if ":" not in tail:
        return True
    return tail.rsplit(":", 1)[1].isdigit()


def mask_url(url: str) -> str:
    """``url`` with every password in it replaced by ***; a value not surely a URL, whole."""
    scheme, sep, rest = url.partition("://")
    if not sep or not SCHEME.fullmatch(scheme):
        return MASK
    creds = ""
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        if any(c in userinfo for c in "/?#"):
            return f"{scheme}://{MASK}"  # where the userinfo ends is not certain
        user = userinfo.split(":", 1)[0] if ":" in userinfo else ""
        creds = f"{user}:{MASK}@"
    rest, hash_sep, _ = rest.partition("#")
    base, query_sep, query = rest.partition("?")
    authority, slash, path = base.partition("/")
    if not _plain_authority(authority) or not PLAIN_PATH.fullmatch(slash + path):
        return f"{scheme}://{MASK}"  # a host:port that is no port, a path with : in it
    shown = f"{scheme}://{creds}{base}"
    if query_sep:
        shown += f"?{_query(query)}"
    if hash_sep:
        shown += f"#{MASK}"
    return shown


def shown_scheme(raw: str) -> str:
    """The scheme of a URL-like value for an error message, never any other part of it."""
    scheme, sep, _ = raw.partition("://")
    if sep and SCHEME.fullmatch(scheme):
        return repr(scheme)
    return "(none: the value is not a URL)"
