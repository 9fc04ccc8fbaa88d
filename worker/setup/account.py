"""The ``kamado`` system account and /etc/kamado, which every box's services share."""

from __future__ import annotations

from worker.setup.system import System

__all__ = ["CONFIG", "ETC", "KAMADO", "ensure_account"]

KAMADO = "kamado"
ETC = "/etc/kamado"
CONFIG = f"{ETC}/kamado.toml"
DEFAULT_STATE_DIR = "/var/lib/kamado"
STARTING_CONFIG = (
    "# Written by `kamado setup`; every key: deploy/kamado.example.toml.\n"
    f'state_dir = "{DEFAULT_STATE_DIR}"\n'
)


def ensure_account(
    system: System, state_dir: str = DEFAULT_STATE_DIR, account: str = KAMADO
) -> None:
    """Group and system user ``account``, its home (the state directory) and /etc/kamado.

    The state directory is what the units' StateDirectory= makes at their first start;
    commands run before it (`kamado guest probe`) need it too. An existing one is kept:
    the recorder's is shared with the hook (see `kamado setup recorder`).
    """
    system.ensure_group(account)
    system.ensure_user(account, home=state_dir, group=account)
    system.ensure_dir(ETC, owner="root", group=account, mode=0o750)
    system.ensure_dir(state_dir, owner=account, group=account, mode=0o750, keep=True)


def ensure_config(system: System, account: str = KAMADO, text: str = STARTING_CONFIG) -> None:
    """A kamado.toml to edit, 0640 root:``account`` (it will hold the broker password).

    An existing one is kept as it is (its mode too: `kamado doctor` reports a wrong one).
    """
    if system.path(CONFIG).is_file():
        system.note(CONFIG, "exists, kept")
        return
    system.ensure_file(CONFIG, text, owner="root", group=account, mode=0o640, replace=False)
