"""A caption sidecar beside an SFTP output: pushed, checked and committed like the MP4."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.staging.test_remote_output_checks import Seen, tree, worker_settings
from tests.support.arib import captioned_ts, expected_captions, srt_texts
from tests.support.sshd import SshdProcess
from worker.captions import CaptionStatus
from worker.encode.pipeline import Attempt, encode_job
from worker.errors import OutputConflict
from worker.jobs import Job
from worker.profiles import Backend, Captions, Profile
from worker.settings.model import Settings

pytestmark = pytest.mark.integration


def with_sidecar(settings: Settings) -> Settings:
    profile = Profile(
        backends=[Backend.X264], x264_preset="ultrafast", captions=Captions(sidecar="srt")
    )
    return settings.model_copy(update={"profiles": {"cc": profile}})


@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    """The SFTP location's directory, holding コナン.ts with real ARIB captions."""
    path = tmp_path / "recorder"
    path.mkdir()
    captioned_ts(path / "コナン.ts", units=9)
    return path


def test_an_sftp_output_gets_its_caption_sidecar_beside_it(
    sshd: SshdProcess, recorder: Path, tmp_path: Path
) -> None:
    settings = with_sidecar(worker_settings(sshd, recorder, tmp_path))
    committed: list[str] = []
    result = encode_job(
        Job.create("sftp://recorder/コナン.ts", "cc"),
        Attempt(
            settings=settings,
            backends=[Backend.X264],
            on_committed=lambda key, _fp: committed.append(key),
        ),
    )
    assert result.captions is not None and result.captions.status is CaptionStatus.KEPT
    sidecar = recorder / "コナン.srt"
    assert result.captions.sidecar == "sftp://recorder/コナン.srt"
    assert srt_texts(sidecar.read_text(encoding="utf-8")) == expected_captions(3)
    assert (recorder / "コナン.mp4").is_file()
    assert len(committed) == 2 and committed[0].endswith("コナン.srt")
    assert sorted(p.name for p in recorder.iterdir()) == ["コナン.mp4", "コナン.srt", "コナン.ts"]


def test_a_remote_file_kamado_did_not_write_where_the_sidecar_goes_is_kept_and_refuses_the_job(
    sshd: SshdProcess, recorder: Path, tmp_path: Path
) -> None:
    (recorder / "コナン.srt").write_text("fan subtitles\n", encoding="utf-8")
    before = tree(recorder)
    seen = Seen()
    with pytest.raises(OutputConflict, match="caption sidecar"):
        encode_job(
            Job.create("sftp://recorder/コナン.ts", "cc"),
            Attempt(
                settings=with_sidecar(worker_settings(sshd, recorder, tmp_path)),
                backends=[Backend.X264],
                on_progress=seen,
            ),
        )
    assert not seen.encoded
    assert tree(recorder) == before
