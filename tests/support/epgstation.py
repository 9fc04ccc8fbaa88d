"""A real EPGStation 2.7.3 server with Mirakurun and one fake tuner, for tests.

The server source is tests/fixtures/epgstation/ (its README says where it comes from).
:func:`build` installs it once with npm (native modules compiled against the system's
SQLite, since the prebuilt binaries live off the package registry) and compiles it with
tsc, into ``${KAMADO_TEST_EPGSTATION_DIR:-~/.cache/kamado/epgstation}/2.7.3``;
``python -m tests.support.epgstation build`` (run by ``scripts/setup.sh dev``) does it
ahead of the tests.

:class:`EpgstationServer` runs one instance in a test's directory: the Mirakurun its
``node_modules`` carries (a unix socket, one GR tuner whose command is ffmpeg looping a
generated transport stream as service 1024, that service and a six-hour programme seeded
into its database since ffmpeg writes no NIT or EIT), and EPGStation itself on a free
loopback port (it has no bind-address option: a node preload binds its API to
127.0.0.1), with SQLite, its own recorded directory and the encode presets a test gives.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.redis_proc import free_port
from worker.encode.sample import make_sample

VERSION = "2.7.3"
FIXTURE = Path(__file__).parents[1] / "fixtures" / "epgstation"
TARBALL = FIXTURE / f"EPGStation-v{VERSION}-server.tar.gz"
SERVICE_ID = 1024
NETWORK_ID = 32736
CHANNEL_ID = NETWORK_ID * 100000 + SERVICE_ID  # Mirakurun's service id, EPGStation's channelId
MISSING = "node and npm are not installed (scripts/setup.sh dev installs them)"

PRELOAD = """'use strict';
// Loaded with `node -r` into EPGStation's main process: adds itself to the
// ServiceExecutor child (the HTTP API) and there binds listen(port[, cb]) to 127.0.0.1.
const cp = require('child_process');
const net = require('net');
const spawn = cp.spawn;
cp.spawn = function (cmd, args, ...rest) {
    const api = /ServiceExecutor\\.js$/;
    if (cmd === process.execPath && Array.isArray(args) && api.test(args[0] || '')) {
        args = ['-r', __filename, ...args];
    }
    return spawn.call(this, cmd, args, ...rest);
};
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...a) {
    const port = typeof a[0] === 'number' || /^\\d+$/.test(String(a[0]));
    if (port && (a.length === 1 || typeof a[1] === 'function')) {
        a.splice(1, 0, '127.0.0.1');
    }
    return listen.apply(this, a);
};
"""


def build_dir() -> Path:
    """Where the built server lives (shared by every test and session)."""
    base = os.environ.get("KAMADO_TEST_EPGSTATION_DIR") or str(
        Path.home() / ".cache" / "kamado" / "epgstation"
    )
    return Path(base) / VERSION


def node_available() -> bool:
    """True when node and npm are installed."""
    return shutil.which("node") is not None and shutil.which("npm") is not None


def _built(app: Path) -> bool:
    bindings = list((app / "node_modules" / "sqlite3").glob("**/node_sqlite3.node"))
    return (app / "dist" / "index.js").is_file() and bool(bindings)


def require_epgstation() -> Path:
    """The built server; skips where node is missing (a failure under CI=true)."""
    if not node_available():
        pytest.skip(MISSING)
    return build()


def build(log: Callable[[str], None] = lambda _line: None) -> Path:
    """Build the server once (a few minutes the first time); its directory."""
    root = build_dir()
    app = root / "EPGStation"
    if _built(app):
        return app
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it right now
        if not _built(app):
            _build_into(root, app, log)
    return app


def _build_into(root: Path, app: Path, log: Callable[[str], None]) -> None:
    partial = root / "partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    with tarfile.open(TARBALL) as tar:
        tar.extractall(partial, filter="data")
    source = partial / "EPGStation"
    env = dict(os.environ)
    env["npm_config_build_from_source"] = "true"  # prebuilt binaries are not on the registry
    if Path("/usr/include/node/node_api.h").is_file():
        env["npm_config_nodedir"] = "/usr"  # node-gyp's headers, without a download
    if Path("/usr/include/sqlite3.h").is_file():
        env["npm_config_sqlite"] = "/usr"  # link the system SQLite, not its amalgamation
    npm_log = root / "npm-install.log"
    for attempt in range(5):
        log(f"npm install (attempt {attempt + 1}) in {source}")
        argv = ["npm", "install", "--no-audit", "--no-fund", "--foreground-scripts"]
        with npm_log.open("w") as out:
            done = subprocess.run(argv, cwd=source, env=env, stdout=out, stderr=out, timeout=1800)
        if done.returncode == 0:
            break
        text = npm_log.read_text(errors="replace")
        gone = _missing_tarball(text)
        if gone is None or attempt == 4:
            raise RuntimeError(f"npm install failed; the end of {npm_log}:\n{text[-3000:]}")
        # A locked version the registry no longer serves (arib-mpeg2ts-parser 3.0.13 has
        # been): drop it from the lock so npm resolves it again within its range.
        log(f"the registry no longer serves {gone}: dropping it from package-lock.json")
        _drop_from_lock(source / "package-lock.json", gone)
    log("tsc")
    tsc = subprocess.run(
        ["npx", "--no-install", "tsc"], cwd=source, capture_output=True, text=True, timeout=900
    )
    if tsc.returncode != 0:
        raise RuntimeError(f"tsc failed:\n{tsc.stdout[-3000:]}{tsc.stderr[-3000:]}")
    shutil.rmtree(app, ignore_errors=True)
    source.rename(app)
    shutil.rmtree(partial, ignore_errors=True)
    log(f"built EPGStation {VERSION} in {app}")


def _missing_tarball(npm_output: str) -> str | None:
    """The package whose locked tarball npm could not fetch (a 404), or None."""
    for line in npm_output.splitlines():
        if "404" in line and ".tgz" in line:
            for word in line.split():
                if word.startswith("http") and word.endswith(".tgz"):
                    path = urllib.parse.urlparse(word).path.lstrip("/")
                    return urllib.parse.unquote(path.split("/-/")[0])
    return None


def _drop_from_lock(lock: Path, name: str) -> None:
    data = json.loads(lock.read_text())
    for key in list(data.get("packages", {})):
        if key == f"node_modules/{name}" or key.endswith(f"/node_modules/{name}"):
            del data["packages"][key]
    lock.write_text(json.dumps(data, indent=4) + "\n")


@dataclass(frozen=True)
class Preset:
    """One entry of EPGStation's ``encode:`` list (its cmd is split on spaces)."""

    name: str
    cmd: str
    suffix: str = ".mp4"
    rate: float = 10.0


@dataclass(frozen=True)
class Programme:
    """A programme the fake tuner's service carries, as Mirakurun's EPG knows it."""

    name: str
    start_ms: int
    duration_ms: int
    event_id: int = 1


@dataclass
class EpgstationServer:
    """One Mirakurun and one EPGStation in ``directory``; stop() ends both."""

    directory: Path
    presets: list[Preset]
    build: Path
    sample: Path
    programmes: list[Programme] = field(default_factory=list)
    finish_command: str | None = None
    start_command: str | None = None
    encoding_finish_command: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def app(self) -> Path:
        return self.directory / "EPGStation"

    @property
    def recorded_dir(self) -> Path:
        return self.app / "recorded"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mirakurun(self) -> Path:
        return self.directory / "mirakurun"

    # ---------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 120) -> EpgstationServer:
        self._start_mirakurun(timeout)
        self._instance()
        self.write_config()
        self._start_epgstation(timeout)
        return self

    def stop(self) -> None:
        for name in ("epgstation", "mirakurun"):
            proc = self.procs.pop(name, None)
            if proc is not None:
                _stop_group(proc)

    def _start_mirakurun(self, timeout: float) -> None:
        mk = self.mirakurun
        for sub in ("conf", "db", "logo"):
            (mk / sub).mkdir(parents=True, exist_ok=True)
        sample = mk / "sample.ts"
        shutil.copy(self.sample, sample)
        # Started as root, Mirakurun renices itself to -10 and takes the realtime I/O
        # class (renice, ionice through a shell): on a test machine those two do nothing.
        shims = mk / "bin"
        shims.mkdir(exist_ok=True)
        for name in ("renice", "ionice"):
            (shims / name).write_text("#!/bin/sh\nexit 0\n")
            (shims / name).chmod(0o755)
        tuner = mk / "fake-tuner.sh"
        tuner.write_text(
            "#!/bin/sh\n"
            f"exec {shutil.which('ffmpeg')} -hide_banner -nostdin -loglevel error -re "
            f"-stream_loop -1 -i {sample} -map 0 -c copy -f mpegts "
            f"-mpegts_service_id {SERVICE_ID} -mpegts_original_network_id {NETWORK_ID} "
            f"-mpegts_transport_stream_id {NETWORK_ID} -metadata service_name=TEST pipe:1\n"
        )
        tuner.chmod(0o755)
        socket_path = mk / "mirakurun.sock"
        (mk / "conf" / "server.yml").write_text(
            f"logLevel: 2\npath: {socket_path}\nport: ~\nhostname: localhost\n"
            "disableEITParsing: true\ndisableWebUI: true\n"
        )
        (mk / "conf" / "tuners.yml").write_text(
            f"- name: fake-tuner\n  types: [GR]\n  command: {tuner} <channel>\n"
        )
        (mk / "conf" / "channels.yml").write_text("- name: TEST-GR\n  type: GR\n  channel: '27'\n")
        now = int(time.time() * 1000)
        service = {
            "id": CHANNEL_ID, "serviceId": SERVICE_ID, "networkId": NETWORK_ID,
            "name": "EPGS TEST 1", "type": 1, "logoId": -1, "remoteControlKeyId": 1,
            "epgReady": True, "epgUpdatedAt": now, "channel": {"type": "GR", "channel": "27"},
        }  # fmt: skip
        (mk / "db" / "services.json").write_text(json.dumps([service]))
        programmes = self.programmes or [
            Programme("偽チューナー テスト番組", now - 60_000, 21_600_000)
        ]
        (mk / "db" / "programs.json").write_text(
            json.dumps([_programme(p) for p in programmes], ensure_ascii=False)
        )
        env = {
            "PATH": f"{shims}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(mk),
            "LANG": "C.UTF-8",
            "SERVER_CONFIG_PATH": str(mk / "conf" / "server.yml"),
            "TUNERS_CONFIG_PATH": str(mk / "conf" / "tuners.yml"),
            "CHANNELS_CONFIG_PATH": str(mk / "conf" / "channels.yml"),
            "SERVICES_DB_PATH": str(mk / "db" / "services.json"),
            "PROGRAMS_DB_PATH": str(mk / "db" / "programs.json"),
            "LOGO_DATA_DIR_PATH": str(mk / "logo"),
        }  # fmt: skip
        argv = [_node(), "-r", "source-map-support/register", "lib/server.js"]
        with (self.directory / "mirakurun.log").open("ab") as log:
            self.procs["mirakurun"] = subprocess.Popen(
                argv, cwd=self.build / "node_modules" / "mirakurun", env=env, stdout=log,
                stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not _unix_ok(socket_path, "/api/status"):
            if self.procs["mirakurun"].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Mirakurun did not start:\n{self.log_tail('mirakurun')}")
            time.sleep(0.2)

    def _instance(self) -> None:
        """This server's own tree: the built code, its own config, data and recordings."""
        app = self.app
        if app.exists():
            return
        app.mkdir(parents=True)
        for name in ("package.json", "api.yml", "ormconfig.js"):
            shutil.copy(self.build / name, app / name)
        shutil.copytree(self.build / "dist", app / "dist")
        shutil.copytree(self.build / "config", app / "config")
        (app / "node_modules").symlink_to(self.build / "node_modules")
        for sub in ("data", "logs", "recorded", "thumbnail", "drop"):
            (app / sub).mkdir(exist_ok=True)
        for name in ("operatorLogConfig", "epgUpdaterLogConfig", "serviceLogConfig"):
            sample = app / "config" / f"{name}.sample.yml"
            if sample.is_file():
                shutil.copy(sample, app / "config" / f"{name}.yml")
        (self.directory / "loopback-preload.js").write_text(PRELOAD)

    def write_config(self) -> None:
        """config.yml from the presets and hooks (EPGStation reads it again when it changes)."""
        socket_path = urllib.parse.quote(str(self.mirakurun / "mirakurun.sock"), safe="")
        lines = [
            f"port: {self.port}",
            "apiServers:",
            f"    - {self.url}",
            f"mirakurunPath: 'http+unix://{socket_path}/'",
            "dbtype: sqlite",
            f"uid: {os.getuid()}",
            f"gid: {os.getgid()}",
            "epgUpdateIntervalTime: 10",
            "recordedFormat: '%YEAR%%MONTH%%DAY%-%HOUR%%MIN%%SEC%-%TITLE%'",
            "recordedFileExtension: .m2ts",
            "recorded:",
            "    - name: recorded",
            f"      path: '{self.recorded_dir}'",
            f"thumbnail: '{self.app / 'thumbnail'}'",
            f"ffmpeg: {shutil.which('ffmpeg')}",
            f"ffprobe: {shutil.which('ffprobe')}",
            "encodeProcessNum: 2",
            "concurrentEncodeNum: 1",
            "encode:",
        ]
        for preset in self.presets:
            cmd = preset.cmd.replace("'", "''")
            lines += [
                f"    - name: {preset.name}",
                f"      cmd: '{cmd}'",
                f"      suffix: {preset.suffix}",
                f"      rate: {preset.rate}",
            ]
        if self.start_command:
            lines.append(f"recordingStartCommand: '{self.start_command}'")
        if self.finish_command:
            lines.append(f"recordingFinishCommand: '{self.finish_command}'")
        if self.encoding_finish_command:
            lines.append(f"encodingFinishCommand: '{self.encoding_finish_command}'")
        (self.app / "config" / "config.yml").write_text("\n".join(lines) + "\n")

    def _start_epgstation(self, timeout: float) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "TZ": "Asia/Tokyo",
            # TypeORM finds ormconfig.js (the SQLite file's path) at the app's root, which
            # it takes from node_modules' real place, the shared build: this instance's.
            "APP_ROOT_PATH": str(self.app),
            **self.env,
        }
        preload = str(self.directory / "loopback-preload.js")
        with (self.directory / "epgstation.log").open("ab") as log:
            self.procs["epgstation"] = subprocess.Popen(
                [_node(), "-r", preload, "dist/index.js"], cwd=self.app, env=env, stdout=log,
                stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError, ValueError):
                if len(self.get("/api/channels")) == 1:
                    break
            if self.procs["epgstation"].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"EPGStation did not start:\n{self.log_tail('epgstation')}")
            time.sleep(0.3)
        shared = self.build / "data" / "database.db"
        if shared.exists():  # every server would see every other's recordings
            raise RuntimeError(f"EPGStation keeps its database in the shared build: {shared}")

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.directory / f"{name}.log"
        text = path.read_text(errors="replace") if path.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])

    def service_log(self, name: str = "service.log") -> str:
        """One of EPGStation's own logs (logs/Service/{service,encode,...}.log)."""
        path = self.app / "logs" / "Service" / name
        return path.read_text(errors="replace") if path.is_file() else ""

    # ---------------------------------------------------------------- the HTTP API
    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def recorded(self, recorded_id: int) -> dict[str, Any]:
        item: dict[str, Any] = self.get(f"/api/recorded/{recorded_id}?isHalfWidth=false")
        return item

    def video_files(self, recorded_id: int) -> list[dict[str, Any]]:
        files: list[dict[str, Any]] = self.recorded(recorded_id).get("videoFiles", [])
        return files

    def new_recorded(self, name: str, seconds: float) -> int:
        end = int(time.time() * 1000)
        body = {
            "channelId": CHANNEL_ID, "startAt": end - int(seconds * 1000), "endAt": end,
            "name": name, "description": "uploaded by a test", "genre1": 7, "subGenre1": 0,
        }  # fmt: skip
        recorded_id: int = self.post("/api/recorded", body)["recordedId"]
        return recorded_id

    def upload(self, recorded_id: int, source: Path, filename: str | None = None) -> int:
        """Upload a TS into the recorded entry (EPGStation moves it into recorded/); its id."""
        before = {f["id"] for f in self.video_files(recorded_id)}
        boundary = uuid.uuid4().hex
        fields = {
            "recordedId": str(recorded_id), "parentDirectoryName": "recorded",
            "viewName": "TS", "fileType": "ts",
        }  # fmt: skip
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        # busboy (EPGStation's multipart parser) takes the name as raw UTF-8
        quoted = (filename or source.name).replace('"', "%22").replace("\r", "").replace("\n", "")
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{quoted}"\r\n'
            "Content-Type: video/mp2t\r\n\r\n"
        ).encode()
        data = head + source.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        req = urllib.request.Request(
            self.url + "/api/videos/upload", data=data, method="POST",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=120) as resp:
            resp.read()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = [f["id"] for f in self.video_files(recorded_id) if f["id"] not in before]
            if new:
                return int(new[0])
            time.sleep(0.2)
        raise RuntimeError(f"the upload into recorded {recorded_id} did not appear")

    def encode(self, recorded_id: int, video_file_id: int, mode: str) -> int:
        body = {
            "recordedId": recorded_id, "sourceVideoFileId": video_file_id,
            "parentDir": "recorded", "mode": mode, "removeOriginal": False,
        }  # fmt: skip
        encode_id: int = self.post("/api/encode", body)["encodeId"]
        return encode_id

    def encode_state(self, encode_id: int) -> tuple[str, float | None]:
        """('running', percent) / ('waiting', None) / ('gone', None) for one encode."""
        queue = self.get("/api/encode?isHalfWidth=false")
        for item in queue.get("runningItems", []):
            if item["id"] == encode_id:
                return "running", item.get("percent")
        if any(item["id"] == encode_id for item in queue.get("waitItems", [])):
            return "waiting", None
        return "gone", None

    def follow_encode(
        self, encode_id: int, timeout: float, *, cancel_after: float | None = None
    ) -> list[float]:
        """Poll one encode until EPGStation drops it; the percents it showed meanwhile."""
        percents: list[float] = []
        started = time.monotonic()
        cancelled = False
        while time.monotonic() - started < timeout:
            state, percent = self.encode_state(encode_id)
            if state == "gone":
                return percents
            if percent is not None:
                percents.append(float(percent))
            if (
                cancel_after is not None
                and not cancelled
                and percents
                and (time.monotonic() - started > cancel_after)
            ):
                self.request("DELETE", f"/api/encode/{encode_id}")
                cancelled = True
            time.sleep(0.25)
        raise AssertionError(f"encode {encode_id} still queued after {timeout} s")

    def reserve(self, name: str, start_ms: int, end_ms: int, mode: str | None) -> int:
        """A time-specified reservation on the fake tuner, auto-encoded with ``mode``."""
        body: dict[str, Any] = {
            "allowEndLack": True,
            "timeSpecifiedOption": {
                "name": name, "channelId": CHANNEL_ID, "startAt": start_ms, "endAt": end_ms,
            },
            "saveOption": {"parentDirectoryName": "recorded"},
        }  # fmt: skip
        if mode is not None:
            body["encodeOption"] = {
                "mode1": mode, "encodeParentDirectoryName1": "recorded",
                "isDeleteOriginalAfterEncode": False,
            }  # fmt: skip
        reserve_id: int = self.post("/api/reserves", body)["reserveId"]
        return reserve_id

    def recordings(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self.get("/api/recorded?isHalfWidth=false&limit=50")[
            "records"
        ]
        return records


def _programme(p: Programme) -> dict[str, Any]:
    return {
        "id": int(f"{NETWORK_ID}{SERVICE_ID:05d}{p.event_id:05d}"), "eventId": p.event_id,
        "serviceId": SERVICE_ID, "networkId": NETWORK_ID, "startAt": p.start_ms,
        "duration": p.duration_ms, "isFree": True, "name": p.name,
        "description": "the fake tuner's sample, looped",
        "genres": [{"lv1": 7, "lv2": 0, "un1": 15, "un2": 15}],
        "video": {"type": "mpeg2", "resolution": "1080i", "streamContent": 1, "componentType": 179},
        "audios": [{"componentType": 3, "componentTag": 16, "isMain": True,
                    "samplingRate": 48000, "langs": ["jpn"]}],
        "extended": {},
    }  # fmt: skip


def _node() -> str:
    return shutil.which("node") or "node"


def _unix_ok(socket_path: Path, path: str) -> bool:
    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(2)
            self.sock.connect(str(socket_path))

    conn = Conn("localhost", timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _stop_group(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # and whatever it left in its group (ffmpeg)
    proc.wait(timeout=10)


@contextlib.contextmanager
def running_epgstation(
    directory: Path, presets: list[Preset], **options: Any
) -> Iterator[EpgstationServer]:
    """A started server for the block; skips where node is missing."""
    build_path = require_epgstation()
    directory.mkdir(parents=True, exist_ok=True)
    sample = directory / "tuner-sample.ts"  # looped by the fake tuner
    if not sample.is_file():
        make_sample(sample, seconds=6)
    server = EpgstationServer(directory, presets, build_path, sample, **options)
    try:
        yield server.start()
    finally:
        server.stop()


def main(argv: list[str]) -> int:
    if argv[1:] != ["build"]:
        print("usage: python -m tests.support.epgstation build", file=sys.stderr)
        return 2
    if not node_available():
        print(f"EPGStation not built: {MISSING}", file=sys.stderr)
        return 1
    print(build(log=lambda line: print(f"epgstation: {line}", flush=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
