"""`kamado setup location NAME`: this worker's key, the host's key, and what to paste where."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from worker.setup.account import ETC, KAMADO, ensure_account, ensure_config
from worker.setup.envfile import toml_string
from worker.setup.errors import SetupError
from worker.setup.report import Paste
from worker.setup.system import System, tool

# Owned by the services' user: OpenSSH refuses a private key its caller owns if others may
# read it, so root:kamado 0640 would fail for root and 0600 root-owned for kamado.
KEY_MODE = 0o600
SCAN_TIMEOUT_S = 10
AUTHORIZED_KEYS_DIR = "/etc/ssh/authorized_keys"


@dataclass(frozen=True)
class LocationOptions:
    """What `setup location` was asked for."""

    name: str
    host: str
    port: int
    user: str
    remote_dir: str
    recorder_path: str
    key_file: str
    known_hosts: str
    writable: bool
    account: str = KAMADO  # the local user that reads the key


@dataclass(frozen=True)
class HostKey:
    """One line of ssh-keyscan output and its SHA256 fingerprint."""

    line: str
    fingerprint: str

    @property
    def kind(self) -> str:
        """The key type (ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa)."""
        return self.line.split()[1]


def setup_location(system: System, opts: LocationOptions) -> tuple[list[Paste], list[HostKey]]:
    """Make the key pair, add the host's keys to known_hosts; the blocks to paste."""
    ensure_account(system, account=opts.account)
    ensure_config(system, opts.account)
    _ensure_key(system, opts)
    keys = scan(system, opts.host, opts.port)
    _merge_known_hosts(system, opts.known_hosts, keys, opts.account)
    public = system.path(f"{opts.key_file}.pub")
    pub = public.read_text(encoding="utf-8").strip() if public.is_file() else "<the new key>.pub"
    return pastes(opts, pub), keys


def _ensure_key(system: System, opts: LocationOptions) -> None:
    key = system.path(opts.key_file)
    if key.is_file():
        system.note(opts.key_file, "key pair exists, kept")
    else:
        argv = [
            tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C",
            f"kamado@{opts.name}", "-f", str(key),
        ]  # fmt: skip
        if not system.dry_run:
            key.parent.mkdir(parents=True, exist_ok=True)
        system.run(argv, f"key pair {opts.key_file}")
    system.ensure_meta(opts.key_file, owner=opts.account, group=opts.account, mode=KEY_MODE)
    system.ensure_meta(f"{opts.key_file}.pub", owner="root", group=opts.account, mode=0o644)


def scan(system: System, host: str, port: int) -> list[HostKey]:
    """The host's keys as ssh-keyscan reads them, each with its fingerprint (read-only)."""
    argv = [tool("ssh-keyscan"), "-T", str(SCAN_TIMEOUT_S), "-p", str(port), host]
    out = system.run(argv, f"ssh-keyscan {host}:{port}", changes=False)
    lines = [x for x in out.splitlines() if x.strip() and not x.startswith("#")]
    if not lines:
        raise SetupError(
            f"{host}:{port}: ssh-keyscan got no host key (is sshd running there, and the port "
            "open from this box?)"
        )
    with tempfile.TemporaryDirectory(prefix="kamado-keyscan-") as temp:
        scanned = Path(temp) / "known_hosts"
        scanned.write_text("\n".join(lines) + "\n", encoding="utf-8")
        listed = system.run(
            [tool("ssh-keygen"), "-l", "-f", str(scanned)], "fingerprints", changes=False
        )
    prints = [row.split()[1] for row in listed.splitlines() if row.strip()]
    if len(prints) != len(lines):
        raise SetupError(f"{host}:{port}: ssh-keygen could not read the scanned host keys")
    return [HostKey(line, fp) for line, fp in zip(lines, prints, strict=True)]


def _merge_known_hosts(system: System, known_hosts: str, keys: list[HostKey], account: str) -> None:
    path = system.path(known_hosts)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    have = {tuple(x.split()[:2]): x.split()[2] for x in text.splitlines() if len(x.split()) >= 3}
    added = []
    for key in keys:
        host, kind, blob = key.line.split()[:3]
        known = have.get((host, kind))
        if known is not None and known != blob:
            raise SetupError(
                f"{known_hosts}: {host} has a different {kind} key than it now presents "
                f"({key.fingerprint}); if the host was reinstalled, confirm the fingerprint "
                f"with its admin, then: ssh-keygen -R '{host}' -f {known_hosts}",
                path=known_hosts,
            )
        if known is None:
            added.append(key.line)
    merged = text + "".join(f"{line}\n" for line in added)
    system.ensure_file(known_hosts, merged, owner="root", group=account, mode=0o644, replace=True)


def path_target(opts: LocationOptions) -> str:
    """The sftp:// URI prefix that reaches ``recorder_path`` through this location."""
    recorder = PurePosixPath(opts.recorder_path)
    root = PurePosixPath(opts.remote_dir)
    if not recorder.is_relative_to(root):
        raise SetupError(
            f"--recorder-path {opts.recorder_path} is not under --remote-dir {opts.remote_dir}: "
            "the location can only reach files under its root"
        )
    rest = str(recorder.relative_to(root))
    return f"sftp://{opts.name}" + ("" if rest == "." else f"/{rest}")


def pastes(opts: LocationOptions, pub: str) -> list[Paste]:
    """The blocks for the recorder's sshd and account, and for the configs."""
    toml = (
        f"[staging.locations.{opts.name}]\n"
        'kind = "sftp"\n'
        f"host = {toml_string(opts.host)}\n"
        f"port = {opts.port}\n"
        f"user = {toml_string(opts.user)}\n"
        f"key_file = {toml_string(opts.key_file)}\n"
        f"known_hosts = {toml_string(opts.known_hosts)}\n"
        f"root = {toml_string(opts.remote_dir)}\n"
        f"recorder_path = {toml_string(opts.recorder_path)}\n"
        f"writable = {'true' if opts.writable else 'false'}\n"
    )
    path_map = (
        "[[scheduler.path_map]]\n"
        f"recorder = {toml_string(opts.recorder_path)}\n"
        f"target = {toml_string(path_target(opts))}\n"
    )
    keys_file = f"{AUTHORIZED_KEYS_DIR}/{opts.user}"
    account = (
        f"sudo install -d -m 0755 {AUTHORIZED_KEYS_DIR}\n"
        f"echo 'restrict {pub}' | sudo tee -a {keys_file}\n"
        f"sudo chmod 0644 {keys_file}\n"
    )
    # Outside the home: the shared state directory that is kamado's home is group-writable,
    # which sshd's StrictModes refuses for ~/.ssh/authorized_keys.
    match = (
        f"Match User {opts.user}\n"
        f"    AuthorizedKeysFile {AUTHORIZED_KEYS_DIR}/%u\n"
        "    ForceCommand internal-sftp\n"
        "    AllowTcpForwarding no\n"
        "    X11Forwarding no\n"
        "    PermitTTY no\n"
    )
    blocks = [
        Paste(f"this worker's key for {opts.user}@{opts.host}", f"run on {opts.host}", account),
        Paste(
            "SFTP without a login shell (the account's shell is nologin); then "
            "`sudo sshd -t && sudo systemctl reload ssh`",
            f"the end of /etc/ssh/sshd_config on {opts.host}",
            match,
        ),
        Paste("the location", f"{ETC}/kamado.toml on this worker", toml),
        Paste("recorder paths → this location", f"{ETC}/kamado.toml on the recorder", path_map),
    ]
    if opts.writable:
        blocks.append(
            Paste(
                "outputs are written there (writable = true): let the account write it",
                f"run on {opts.host}",
                f'sudo usermod -aG "$(stat -c %G {opts.remote_dir})" {opts.user}\n'
                f"sudo chmod g+rwx {opts.remote_dir}\n",
            )
        )
    return blocks
