"""How the output contract sees the place an output goes: the hook for each kind of location.

The contract needs two answers about a candidate output path: which place it really is
(the key a claim is stored under) and what file is there now (a fingerprint, or None).
:class:`LocalView` answers for this machine's file system; SFTP outputs are answered by
the staging side with the server's realpath and stat (see worker/staging/identity.py).
"""

from __future__ import annotations

import os
from typing import Protocol

from worker.outputs.identity import local_fingerprint, real_path


class OutputView(Protocol):
    """Identity and current contents of candidate output paths on one location."""

    def key(self, path: str) -> str:
        """The identity of the place ``path`` names: equal for two spellings of one place."""
        ...

    def existing(self, path: str) -> str | None:
        """A fingerprint of the file at ``path``, or None when nothing is there."""
        ...


class LocalView:
    """Outputs on this machine: real paths, and device/inode/size/mtime fingerprints."""

    def key(self, path: str) -> str:
        """The real path (symlinks and ``..`` resolved)."""
        return real_path(path)

    def existing(self, path: str) -> str | None:
        """The fingerprint of the file there, also of a dangling symlink's name (never None)."""
        found = local_fingerprint(path)
        if found is None and os.path.lexists(path):
            return "symlink"  # a dangling symlink: writing would create its target
        return found


class BlindView:
    """A place this process cannot see (the submitter without the worker's mounts)."""

    def key(self, path: str) -> str:
        """The spelling, normalised; the worker checks the real place again."""
        return os.path.normpath(path) if path.startswith("/") else path

    def existing(self, path: str) -> str | None:
        """Unknown here: the worker decides when it can see the place."""
        return None
