"""Pull, push, stream and prefetch against a real sshd."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.staging.conftest import make_settings
from tests.support.sshd import SshdProcess
from worker.settings.staging import StagingSettings
from worker.staging.api import Prefetcher, stage_in, stage_out
from worker.staging.errors import RemoteNotFoundError

pytestmark = pytest.mark.integration

MakeFile = Callable[[Path, int], bytes]
HOSTILE_NAMES = [
    "録画/ニュース 7時 (再).ts",
    'it\'s a "quoted" name.ts',
    "$(touch pwned) `id` ; rm -rf x.ts",
    "line\nbreak.ts",
    " leading and trailing space .ts",
    "100% *?[x]{a,b}.ts",
]


def test_pulled_source_matches_remote_file_and_its_sha256(
    settings: StagingSettings, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    data = make_file(remote / "rec" / "a.ts", 3 * 1024 * 1024 + 17)
    with stage_in(settings, "sftp://rec/rec/a.ts") as source:
        assert source.copied and not source.streaming
        assert source.path.read_bytes() == data
        assert source.sha256 == hashlib.sha256(data).hexdigest()
        assert source.size == len(data)
        pulled = source.path
    assert not pulled.exists(), "scratch copy is removed after the block"
    assert list((tmp_path / "scratch").iterdir()) == []


def test_host_form_uri_resolves_to_the_configured_location(
    sshd: SshdProcess, settings: StagingSettings, remote: Path, make_file: MakeFile
) -> None:
    data = make_file(remote / "b.ts", 1000)
    uri = f"sftp://{sshd.user}@127.0.0.1:{sshd.port}{remote}/b.ts"
    with stage_in(settings, uri) as source:
        assert source.path.read_bytes() == data


def test_missing_source_names_the_location_and_path(settings: StagingSettings) -> None:
    with pytest.raises(RemoteNotFoundError) as caught, stage_in(settings, "sftp://rec/nope.ts"):
        pass
    assert "'rec'" in str(caught.value) and "nope.ts" in str(caught.value)
    assert not caught.value.transient


def test_pushed_output_appears_only_after_commit(
    settings: StagingSettings, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    data = make_file(tmp_path / "out.mp4", 2 * 1024 * 1024 + 5)
    (remote / "out").mkdir()
    pending = stage_out(settings, tmp_path / "out.mp4", "sftp://rec/out/out.mp4")
    assert not (remote / "out" / "out.mp4").exists()
    assert [p.name.startswith(".kamado-") for p in (remote / "out").iterdir()] == [True]
    pending.commit()
    assert (remote / "out" / "out.mp4").read_bytes() == data
    assert [p.name for p in (remote / "out").iterdir()] == ["out.mp4"]


def test_an_uncommitted_output_leaves_nothing_behind(
    settings: StagingSettings, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    make_file(tmp_path / "out.mp4", 100_000)
    (remote / "old.mp4").write_bytes(b"previous output")
    with stage_out(settings, tmp_path / "out.mp4", "sftp://rec/old.mp4"):
        pass  # the caller's verification failed: no commit
    assert [p.name for p in remote.iterdir()] == ["old.mp4"]
    assert (remote / "old.mp4").read_bytes() == b"previous output"


def test_streamed_source_reaches_a_reader_through_a_fifo(
    settings: StagingSettings, remote: Path, make_file: MakeFile
) -> None:
    data = make_file(remote / "s.ts", 5 * 1024 * 1024 + 3)
    with stage_in(settings, "sftp://rec/s.ts", stream=True) as source:
        assert source.streaming and source.size == len(data)
        got = source.path.read_bytes()  # what ffmpeg would do with -i <path>
        source.finish(timeout=30)
    assert got == data
    assert source.sha256 == hashlib.sha256(data).hexdigest()
    assert not source.path.exists()


def test_a_stream_nobody_reads_is_released_on_exit(
    settings: StagingSettings, remote: Path, make_file: MakeFile
) -> None:
    make_file(remote / "s.ts", 10_000)
    done = threading.Event()

    def run() -> None:
        with stage_in(settings, "sftp://rec/s.ts", stream=True):
            pass  # ffmpeg failed to start and never opened the pipe
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(20)
    assert done.is_set()


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_japanese_and_hostile_file_names_survive_pull_and_push(
    settings: StagingSettings, remote: Path, make_file: MakeFile, tmp_path: Path, name: str
) -> None:
    data = make_file(remote / name, 70_000)
    with stage_in(settings, f"sftp://rec/{name}") as source:
        assert source.path.read_bytes() == data
    out_name = name.replace(".ts", ".mp4")
    make_file(tmp_path / "local.mp4", 50_000)
    stage_out(settings, tmp_path / "local.mp4", f"sftp://rec/{out_name}").commit()
    assert (remote / out_name).read_bytes() == (tmp_path / "local.mp4").read_bytes()
    assert not (tmp_path / "pwned").exists() and not (remote / "pwned").exists()


def test_prefetched_source_is_ready_when_the_job_asks_for_it(
    settings: StagingSettings, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    first = make_file(remote / "1.ts", 1_000_000)
    second = make_file(remote / "2.ts", 2_000_000)
    with Prefetcher(settings) as prefetcher:
        assert prefetcher.prefetch("sftp://rec/2.ts")
        assert not prefetcher.prefetch("sftp://rec/2.ts"), "one pull per URI"
        with prefetcher.stage_in("sftp://rec/1.ts") as source:  # never prefetched: pulled now
            assert source.path.read_bytes() == first
        with prefetcher.stage_in("sftp://rec/2.ts") as source:
            assert source.path.read_bytes() == second
        assert prefetcher.pending() == []
    assert list((tmp_path / "scratch").iterdir()) == []


def test_unused_prefetch_is_removed_on_close(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    settings = make_settings(sshd, remote, tmp_path / "scratch")
    make_file(remote / "3.ts", 500_000)
    with Prefetcher(settings) as prefetcher:
        prefetcher.prefetch("sftp://rec/3.ts")
    assert not any((tmp_path / "scratch").iterdir())


def test_local_output_location_gets_the_file_only_on_commit(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    mount = tmp_path / "mnt"
    mount.mkdir()
    settings = make_settings(
        sshd,
        remote,
        tmp_path / "scratch",
        locations={"nas": {"kind": "local", "path": str(mount), "recorder_path": "/srv/rec"}},
    )
    data = make_file(tmp_path / "o.mp4", 30_000)
    with stage_out(settings, tmp_path / "o.mp4", "/srv/rec/番組.mp4") as pending:
        assert not (mount / "番組.mp4").exists()
        pending.commit()
    assert (mount / "番組.mp4").read_bytes() == data
