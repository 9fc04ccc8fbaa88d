"""ARIB captions with real ffmpeg: kept as mov_text and in a sidecar, or said to be dropped.

The caption stream is a real broadcast's (johnoneil/arib's detective_conan_846.es), muxed
into a generated TS by tests/support/arib.py; the expected text is that project's own
reference decode of the same stream.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Literal

import pytest

from tests.integration.worker.test_cli import kamado
from tests.integration.worker.test_hardware_argv_real_ffmpeg import PARSE_ERRORS
from tests.support.arib import (
    CaptionedTs,
    ass_texts,
    captioned_ts,
    expected_captions,
    plain_libavcodec,
    srt_texts,
)
from tests.support.media import leftovers, sha256
from tests.support.redis_proc import RedisProcess
from worker import process
from worker.broker.claims import Claims
from worker.broker.registry import Registry
from worker.captions import CaptionStatus, caption_support, plan_captions
from worker.encode.argv import build_command
from worker.encode.ffprobe import read_media
from worker.encode.pipeline import Attempt, encode_job
from worker.encode.stderr import classify
from worker.errors import OutputConflict
from worker.jobs import EncodeResult, Job
from worker.profiles import Backend, Captions, Profile
from worker.settings.model import Settings

pytestmark = pytest.mark.integration
# Nine data groups: four statements, of which ffmpeg shows the first three (a caption
# lasts until the next one, and the last has none after it).
UNITS = 9
SHOWN = 3


@pytest.fixture(scope="module")
def captioned(tmp_path_factory: pytest.TempPathFactory) -> CaptionedTs:
    return captioned_ts(tmp_path_factory.mktemp("arib") / "conan.ts", units=UNITS)


def job_for(source: Path, tmp_path: Path, **captions: object) -> tuple[Job, Settings]:
    profile = Profile(
        backends=[Backend.X264], x264_preset="ultrafast", captions=Captions(**captions)
    )
    settings = Settings(state_dir=tmp_path / "state", profiles={"cc": profile})
    return Job.create(str(source), "cc"), settings


def copy_source(captioned: CaptionedTs, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(captioned.path, directory / "名探偵 'コナン'.ts"))


def mov_text_captions(mp4: Path) -> list[str]:
    result = process.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", str(mp4),
         "-map", "0:s:0", "-f", "srt", "-"], timeout=60, check=True,
    )  # fmt: skip
    return srt_texts(result.stdout)


def encode(source: Path, tmp_path: Path, **captions: object) -> EncodeResult:
    job, settings = job_for(source, tmp_path, **captions)
    return encode_job(job, Attempt(settings=settings, backends=[Backend.X264]))


@pytest.mark.parametrize("fmt", ["srt", "ass"])
def test_captions_are_kept_as_mov_text_and_written_beside_the_mp4(
    captioned: CaptionedTs, tmp_path: Path, fmt: Literal["srt", "ass"]
) -> None:
    source = copy_source(captioned, tmp_path / "rec")
    before = sha256(source)
    result = encode(source, tmp_path, sidecar=fmt)
    expected = expected_captions(SHOWN)
    assert mov_text_captions(Path(result.output)) == expected
    sidecar = source.with_suffix(f".{fmt}")
    assert result.captions is not None
    assert result.captions.status is CaptionStatus.KEPT and result.captions.streams == 1
    assert result.captions.sidecar == str(sidecar)
    text = sidecar.read_text(encoding="utf-8")
    assert (srt_texts if fmt == "srt" else ass_texts)(text) == expected
    assert sha256(source) == before
    assert leftovers(source.parent) == [] and not list(source.parent.glob(".kamado-*"))


def test_without_a_caption_decoder_the_result_says_the_captions_were_dropped(
    captioned: CaptionedTs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Debian's ffmpeg itself, run on the plain libavcodec: a real build without libaribb24.
    monkeypatch.setenv("LD_LIBRARY_PATH", str(plain_libavcodec()))
    support = caption_support("ffmpeg")
    assert not support.available and "libavcodec-extra" in support.reason
    source = copy_source(captioned, tmp_path / "rec")
    result = encode(source, tmp_path, sidecar="srt")
    assert result.captions is not None
    assert result.captions.status is CaptionStatus.DROPPED
    assert result.captions.reason.startswith("1 caption stream not kept: this ffmpeg has no")
    probed = process.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
         result.output], timeout=60, check=True,
    )  # fmt: skip
    assert "subtitle" not in probed.stdout.split()
    assert not source.with_suffix(".srt").exists()


def test_a_file_kamado_did_not_write_where_the_sidecar_goes_refuses_the_job_before_encoding(
    captioned: CaptionedTs, tmp_path: Path
) -> None:
    source = copy_source(captioned, tmp_path / "rec")
    foreign = source.with_suffix(".srt")
    foreign.write_text("someone's own subtitles\n", encoding="utf-8")
    with pytest.raises(OutputConflict, match="caption sidecar"):
        encode(source, tmp_path, sidecar="srt")
    assert foreign.read_text(encoding="utf-8") == "someone's own subtitles\n"
    assert not source.with_suffix(".mp4").exists()
    assert not list(source.parent.glob(".kamado-*"))


def test_a_caption_stream_without_text_keeps_the_track_and_writes_no_sidecar(
    tmp_path: Path,
) -> None:
    silent = captioned_ts(tmp_path / "mgmt.ts", units=[1, 3, 5])  # caption management only
    assert silent.statements == 0
    result = encode(silent.path, tmp_path, sidecar="srt")
    assert result.captions is not None and result.captions.status is CaptionStatus.KEPT
    assert result.captions.sidecar is None and "no caption text" in result.captions.reason
    assert not silent.path.with_suffix(".srt").exists()


def test_captions_off_in_the_profile_are_left_out_and_said_so(
    captioned: CaptionedTs, tmp_path: Path
) -> None:
    source = copy_source(captioned, tmp_path / "rec")
    result = encode(source, tmp_path, keep=False)
    assert result.captions is not None and result.captions.status is CaptionStatus.OFF
    assert not source.with_suffix(".srt").exists()


@pytest.mark.parametrize("backend", [Backend.QSV, Backend.VAAPI])
def test_the_hardware_argv_with_captions_and_a_sidecar_fails_only_for_want_of_the_gpu(
    captioned: CaptionedTs, tmp_path: Path, backend: Backend
) -> None:
    if Path("/dev/dri").exists():
        pytest.skip("this machine has a render node; the dry run is for GPU-less machines")
    info = read_media("ffprobe", captioned.path)
    output = tmp_path / "o.mp4"
    plan = plan_captions(
        info.captions, keep=True, sidecar="ass", support=caption_support("ffmpeg"),
        sidecar_temp=tmp_path / "o.ass",
    )  # fmt: skip
    profile = Profile(backends=[backend])
    argv = build_command(backend, profile, info, captioned.path, output, captions=plan).argv
    env = {"LIBVA_DRIVER_NAME": "i965", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0 and not PARSE_ERRORS.search(result.stderr), result.stderr
    assert classify(result.stderr, result.returncode) == "hardware", result.stderr


def test_two_outputs_that_share_a_sidecar_name_cannot_both_write_it(
    captioned: CaptionedTs, tmp_path: Path, redis_server: RedisProcess
) -> None:
    source = copy_source(captioned, tmp_path / "rec")
    profile = Profile(
        backends=[Backend.X264], x264_preset="ultrafast", captions=Captions(sidecar="srt")
    )
    settings = Settings(state_dir=tmp_path / "state", profiles={"a": profile, "b": profile})
    registry = Registry.connect(redis_server.url)
    try:
        claims = Claims(registry)

        def attempt() -> Attempt:
            return Attempt(settings=settings, backends=[Backend.X264], claims=claims,
                           on_committed=claims.mark_written)  # fmt: skip

        first = Job.create(str(source), "a", output=str(source.with_suffix(".mp4")))
        encode_job(first, attempt())
        sidecar = source.with_suffix(".srt")
        written = sha256(sidecar)
        # Another job whose MP4 differs only in the suffix's case: same sidecar place.
        second = Job.create(str(source), "b", output=str(source.with_suffix(".MP4")))
        with pytest.raises(OutputConflict, match=f"sidecar or output of job {first.id}"):
            encode_job(second, attempt())
    finally:
        registry.close()
    assert sha256(sidecar) == written
    assert not source.with_suffix(".MP4").exists()


def test_profiles_argv_shows_the_caption_maps_and_the_sidecar_a_job_would_use(
    captioned: CaptionedTs, tmp_path: Path
) -> None:
    config = tmp_path / "kamado.toml"
    config.write_text(
        '[profiles.cc]\nbackends = ["x264"]\n\n[profiles.cc.captions]\nsidecar = "ass"\n',
        encoding="utf-8",
    )
    output = tmp_path / "o.mp4"
    done = kamado(
        "profiles", "argv", "cc", "--backend", "x264", "--input", str(captioned.path),
        "--output", str(output), "--config", str(config), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    argv = json.loads(done.stdout)
    mp4 = argv.index(str(output))
    assert argv[mp4 - 4 : mp4] == ["-map", "0:2", "-c:s", "mov_text"]
    assert argv[mp4 + 1 :] == ["-map", "0:2", "-c:s", "ass", "-f", "ass", str(tmp_path / "o.ass")]
