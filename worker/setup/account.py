"""The ``kamado`` system account and /etc/kamado, which every box's services share."""

from __future__ import annotations

from worker.setup.system import System

KAMADO = "kamado"
ETC = "/etc/kamado"
DEFAULT_STATE_DIR = "/var/lib/kamado"


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
