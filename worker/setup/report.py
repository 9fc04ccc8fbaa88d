"""What a setup command prints: every action it took (or would take), then what to paste."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rich.text import Text

from worker.cli.common import console, print_json
from worker.setup.system import System

__all__ = ["Paste"]


@dataclass(frozen=True)
class Paste:
    """Text the admin puts somewhere kamado does not write (another box, a recorder's config)."""

    title: str
    where: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return asdict(self)


def show(system: System, pastes: list[Paste], *, as_json: bool, extra: dict[str, Any]) -> None:
    """Print the actions and the paste blocks, as a table of lines or as JSON."""
    if as_json:
        print_json(
            {
                "dry_run": system.dry_run,
                "changed": any(a.changed for a in system.actions),
                "actions": [a.as_dict() for a in system.actions],
                "paste": [p.as_dict() for p in pastes],
                **extra,
            }
        )
        return
    if system.dry_run:
        console.print("dry run: nothing was changed", markup=False)
    for action in system.actions:
        mark = Text(
            "changed" if action.changed else "ok     ", "yellow" if action.changed else "green"
        )
        if system.dry_run and action.changed:
            mark = Text("would  ", "cyan")
        console.print(Text.assemble(mark, " ", action.what, ": ", action.detail), soft_wrap=True)
    for paste in pastes:
        console.print(f"\n# {paste.title}\n# → {paste.where}", markup=False, soft_wrap=True)
        console.print(paste.text.rstrip("\n"), markup=False, soft_wrap=True, highlight=False)
