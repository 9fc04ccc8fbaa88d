"""`kamado encode` as a real subprocess (embedded broker, real worker): where outputs land."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.integration.worker.test_cli import kamado
from tests.support.media import Clips, leftovers, sha256

pytestmark = pytest.mark.integration


def test_equal_stems_a_users_own_mp4_and_a_symlinked_dir_each_get_their_own_output(
    clips: Clips, tmp_path: Path
) -> None:
    sources = {}
    for d, name in (("a", "news.ts"), ("b", "news.ts"), ("c", "第1話.ts")):
        (tmp_path / d).mkdir()
        sources[d] = Path(shutil.copy2(clips.isdb_1080i, tmp_path / d / name))
    (tmp_path / "link").symlink_to(tmp_path / "a", target_is_directory=True)
    enc = tmp_path / "enc"
    enc.mkdir()
    mine = enc / "第1話.mp4"
    mine.write_bytes(b"the user's own encode")
    digests = {d: sha256(p) for d, p in sources.items()}
    result = kamado(
        "encode", str(sources["a"]), str(sources["b"]), str(tmp_path / "link" / "news.ts"),
        str(sources["c"]), "-o", str(enc), "--json", home=tmp_path,
        KAMADO_WORKER__BACKENDS='["x264"]',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 3, "the file through the symlinked dir is the same job as a/news.ts"
    outputs = {Path(r["source"]).parent.name: Path(r["output"]).name for r in rows}
    assert outputs == {"a": "news.mp4", "b": "news (2).mp4", "c": "第1話 (2).mp4"}
    assert all(r["state"] == "done" for r in rows)
    assert sorted(p.name for p in enc.iterdir()) == [
        "news (2).mp4",
        "news.mp4",
        "第1話 (2).mp4",
        "第1話.mp4",
    ]
    assert mine.read_bytes() == b"the user's own encode"
    assert {d: sha256(p) for d, p in sources.items()} == digests
    assert leftovers(enc) == []


def test_an_output_dir_that_is_the_source_dir_through_a_symlink_or_dotdot_is_refused(
    clips: Clips, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    (videos / "x").mkdir(parents=True)
    show = Path(shutil.copy2(clips.isdb_1080i, videos / "show.mp4"))
    digest = sha256(show)
    (tmp_path / "enc").symlink_to(videos, target_is_directory=True)
    for source, out in ((show, tmp_path / "enc"), (videos / "x" / ".." / "show.mp4", videos)):
        result = kamado("encode", str(source), "-o", str(out), home=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "the output would overwrite the source" in result.stderr
        assert not (tmp_path / ".local").exists(), "nothing was started"
    assert sha256(show) == digest
    assert sorted(p.name for p in videos.iterdir()) == ["show.mp4", "x"]
