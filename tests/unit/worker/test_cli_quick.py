"""Finding the quick paths in kamado's own entry_points.txt, as importlib.metadata would."""

from __future__ import annotations

from importlib.metadata import entry_points

from worker.cli.main import quick
from worker.cli.quick import GROUP, load, quick_targets, read_group


def test_the_quick_targets_are_what_importlib_metadata_reports() -> None:
    expected = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    assert expected == {"hook": "scheduler.hooks.quick:main", "encode": "worker.onebox_early:main"}
    assert quick_targets() == expected


def test_a_section_is_read_alone_with_comments_and_spacing() -> None:
    text = (
        "[console_scripts]\nkamado = worker.cli.main:main\n\n"
        f"[{GROUP}]\n# a comment\n  hook =  scheduler.hooks.quick:main  \n\n"
        "[other]\nhook = elsewhere:main\n"
    )
    assert read_group(text, GROUP) == {"hook": "scheduler.hooks.quick:main"}
    assert read_group(text, "missing") == {}


def test_load_resolves_the_target_and_commands_without_one_fall_through() -> None:
    handler = load("scheduler.hooks.quick:main")
    assert handler(["hook", "epgstation", "--help"]) is None  # the full CLI answers --help
    assert quick(["status", "--json"]) is None
    assert quick(["--help"]) is None
    assert quick([]) is None
