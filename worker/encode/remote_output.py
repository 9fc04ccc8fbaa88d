"""One attempt's SFTP output: checked before the encode, pushed and committed after it.

Before ffmpeg starts, on the connection the push will use: the output directory exists,
takes files and has room (worker/staging/preflight.py); the output is not the source and
not a file kamado did not write, compared by the server's real paths (the output
contract, worker/encode/output_contract.py, with :class:`worker.staging.identity.RemoteView`).
After verification the file is pushed under the attempt's own temporary name, its bytes
hashed as they go and compared with the verified file's, and renamed into place without
replacing anything kamado may not replace. When the push fails in a way a retry may mend,
the verified file is kept in the outbox (worker/staging/outbox.py) and the next attempt
only pushes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from worker.encode.output_contract import Chosen, choose_output
from worker.errors import OutputConflict, OutputError, OutputRefused
from worker.jobs import EncodeResult, Job, JobState
from worker.outputs.identity import local_fingerprint
from worker.outputs.view import OutputView
from worker.progress import Progress
from worker.settings.staging import StagingSettings
from worker.staging.connection import Link, connect
from worker.staging.errors import IntegrityError, LocationError
from worker.staging.files import Files
from worker.staging.identity import RemoteView
from worker.staging.local import file_sha256
from worker.staging.outbox import Kept, drop, find, keep
from worker.staging.outgoing import stage_out
from worker.staging.preflight import check_output_directory, remove_stale_pushes
from worker.staging.uri import Target, resolve

if TYPE_CHECKING:
    from worker.encode.pipeline import Attempt

log = logging.getLogger("kamado.staging")

# The output contract's choice for a view and the source's key there (see choose_output).
Choose = Callable[[OutputView, str], Chosen]


@dataclass
class RemoteOutput:
    """An SFTP output checked for one attempt, holding the connection its push will use."""

    settings: StagingSettings
    job_id: str
    tag: str
    output: str
    target: Target
    key: str
    replace: bool
    view: RemoteView
    files: Files | None = field(default=None, repr=False)

    @classmethod
    def prepare(
        cls,
        settings: StagingSettings,
        *,
        job_id: str,
        attempt_id: str,
        source: str,
        output: str,
        link: Link | None = None,
        choose: Choose | None = None,
        replace_existing: bool = False,
    ) -> RemoteOutput:
        """Check the output before the encode; raise the error the push would meet later.

        ``choose`` is the output contract (claims, existing files, renaming); without it
        the output is used as given and a file already there is refused unless
        ``replace_existing``.
        """
        target = resolve(settings, output)
        tag = f"{job_id}-{attempt_id}"
        files = (link.take() if link is not None else None) or connect(settings, target.location)
        try:
            view = RemoteView(settings, files, target.location)
            check_output_directory(settings, files, target, tag=tag)
            remove_stale_pushes(files, target, job_id, tag)
            source_key = view.key(source) if view.sees(source) else source
            _not_the_source(view, output, source, source_key)
            key = view.key(output)
            if choose is not None:
                chosen = choose(view, source_key)
                output, key, replace = chosen.path, chosen.key, chosen.replace
                _not_the_source(view, output, source, source_key)  # a renamed choice too
                target = resolve(settings, output)
            else:
                replace = view.existing(output) is not None
                if replace and not replace_existing:
                    raise OutputConflict(
                        f"{output}: a file is already there and kamado does not replace files "
                        "it did not write (encode.replace_existing = false)",
                        path=output,
                    )
        except BaseException:
            files.close()
            raise
        return cls(settings, job_id, tag, output, target, key, replace, view, files)

    def kept(self) -> Kept | None:
        """A verified output an earlier attempt of this job left here for this output."""
        return find(self.settings.scratch_dir, self.job_id, self.output)

    def deliver(
        self,
        verified: Path,
        *,
        sha256: str | None,
        before_commit: Callable[[], None],
        result: dict[str, Any],
        written: str | None = None,
    ) -> str | None:
        """Push the verified file, check it, commit it; the fingerprint of the file committed.

        ``sha256`` is the verified file's digest when it is known (a kept output); a fresh
        output is hashed once, by the push itself, and ``written`` (its fingerprint when it
        was verified) proves the bytes pushed are the bytes verified: the file must be the
        same inode, size and mtime after the push. A push that fails in a way a retry may
        mend keeps the verified file in the outbox and raises; one that cannot be mended
        drops it.
        """
        files, self.files = self.files, None
        try:
            with stage_out(
                self.settings,
                verified,
                self.output,
                files=files,
                tag=self.tag,
                expected_sha256=sha256,
                replace=self.replace,
            ) as pending:
                before_commit()
                if sha256 is None and local_fingerprint(str(verified)) != written:
                    raise OutputError(
                        f"{verified}: changed after verification; not committed", path=verified
                    )
                pending.commit()
                final = pending.final
        except LocationError as e:
            if e.transient and not isinstance(e, IntegrityError):
                self._keep(verified, sha256, written, result, e)
            else:
                drop(self.settings.scratch_dir, self.job_id)
            raise
        drop(self.settings.scratch_dir, self.job_id)
        return None if final is None else f"{final.size}:{final.mtime}"

    def _keep(
        self,
        verified: Path,
        sha256: str | None,
        written: str | None,
        result: dict[str, Any],
        error: LocationError,
    ) -> None:
        """Keep the verified file for the retry's push (hashed here, on this rare path)."""
        if sha256 is None:
            sha256 = file_sha256(verified)
            if local_fingerprint(str(verified)) != written:
                log.warning(
                    "job %s: %s changed after verification; not kept", self.job_id, verified
                )
                drop(self.settings.scratch_dir, self.job_id)
                return
        kept = keep(
            self.settings.scratch_dir,
            self.job_id,
            verified,
            output=self.output,
            sha256=sha256,
            result=result,
        )
        log.warning(
            "job %s: push failed (%s); the verified output waits in %s for the retry",
            self.job_id,
            error,
            kept.path,
        )

    def close(self) -> None:
        """Close the held connection if the push never took it."""
        files, self.files = self.files, None
        if files is not None:
            files.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _not_the_source(view: RemoteView, output: str, source: str, source_key: str) -> None:
    if view.key(output) == source_key:
        raise OutputRefused(
            f"{output}: the output would overwrite the source {source} (both are "
            f"{view.file(output).real_path} on {view.server})",
            path=output,
        )


def prepare_remote(job: Job, attempt: Attempt) -> RemoteOutput:
    """Check an attempt's SFTP output before its encode (the contract decides the name)."""
    settings = attempt.settings
    claims = attempt.claims
    choose: Choose | None = None
    if claims is not None:

        def choose(view: OutputView, source_key: str) -> Chosen:
            return choose_output(
                settings,
                claims,
                job_id=job.id,
                source_key=source_key,
                source_desc=job.source,
                output=job.output,
                view=view,
            )

    return RemoteOutput.prepare(
        settings.staging,
        job_id=job.id,
        attempt_id=attempt.attempt_id,
        source=job.source,
        output=job.output,
        choose=choose,
        replace_existing=settings.encode.replace_existing,
    )


def deliver_remote(
    attempt: Attempt, remote: RemoteOutput, temp: Path, written: str | None, result: EncodeResult
) -> None:
    """Push a freshly verified output (``written``: its fingerprint before verification).

    The push hashes the bytes as it sends them; they are the verified bytes because the
    file is still the one verified (same inode, size and mtime) once they are sent.
    """
    if local_fingerprint(str(temp)) != written:
        raise OutputError(f"{temp}: changed after verification; not pushed", path=temp)
    fingerprint = remote.deliver(
        temp,
        sha256=None,
        written=written,
        before_commit=lambda: attempt.before_commit(temp),
        result=result.model_dump(mode="json"),
    )
    if fingerprint is not None:
        attempt.on_committed(remote.key, fingerprint)


def push_kept(job: Job, attempt: Attempt, remote: RemoteOutput, kept: Kept) -> EncodeResult:
    """Push the verified output an earlier attempt of this job kept here; no encode."""
    backend = kept.result.get("backend")
    attempt.on_progress(Progress(state=JobState.STAGING, backend=backend))
    log.info("job %s: pushing the verified output kept by an earlier attempt", job.id)
    fingerprint = remote.deliver(
        kept.path,
        sha256=kept.sha256,
        before_commit=lambda: attempt.before_commit(kept.path),
        result=kept.result,
    )
    if fingerprint is not None:
        attempt.on_committed(remote.key, fingerprint)
    return EncodeResult.model_validate({**kept.result, "worker": attempt.worker})
