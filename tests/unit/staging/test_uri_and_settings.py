"""The [staging] section and how URIs resolve against its locations."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from worker.settings.model import Settings
from worker.settings.staging import SftpLocation, StagingSettings
from worker.staging.api import scratch_path
from worker.staging.errors import BadUriError
from worker.staging.outgoing import temp_name
from worker.staging.uri import resolve, sftp_uri

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "staging.example.toml"


def staging(**locations: dict[str, object]) -> StagingSettings:
    return StagingSettings.model_validate({"locations": locations})


SFTP = {
    "kind": "sftp",
    "host": "rec.lan",
    "user": "kamado",
    "key_file": "/k",
    "known_hosts": "/kh",
    "root": "/srv/rec",
}


def test_the_documented_example_is_a_valid_staging_section() -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    settings = Settings(staging=data["staging"])
    assert set(settings.staging.locations) == {"nas", "recorder"}


def test_a_misspelt_location_key_is_rejected_by_name() -> None:
    with pytest.raises(ValidationError, match="hots"):
        staging(rec={**SFTP, "hots": "x"})


def test_location_names_must_be_uri_safe() -> None:
    with pytest.raises(ValidationError, match="location name"):
        staging(**{"bad name": SFTP})


def test_sftp_root_must_be_absolute() -> None:
    with pytest.raises(ValidationError, match="root must be an absolute path"):
        staging(rec={**SFTP, "root": "srv"})


def test_scratch_dir_default_is_expanded() -> None:
    assert "~" not in str(StagingSettings().scratch_dir)


def test_named_sftp_uri_is_relative_to_the_location_root() -> None:
    target = resolve(staging(rec=SFTP), "sftp://rec/録画/a b.ts")
    assert (target.kind, target.location, target.path) == ("sftp", "rec", "/srv/rec/録画/a b.ts")


def test_host_form_uri_finds_the_location_by_host_port_and_user() -> None:
    settings = staging(rec=SFTP)
    target = resolve(settings, "sftp://kamado@rec.lan:22/srv/rec/x.ts")
    assert (target.location, target.path) == ("rec", "/srv/rec/x.ts")
    with pytest.raises(BadUriError, match="outside root"):
        resolve(settings, "sftp://rec.lan/etc/passwd")
    with pytest.raises(BadUriError, match=r"no \[staging\.locations\] entry"):
        resolve(settings, "sftp://other@rec.lan/srv/rec/x.ts")


def test_dot_dot_cannot_escape_the_root() -> None:
    with pytest.raises(BadUriError, match=r"'\.\.' is not allowed"):
        resolve(staging(rec=SFTP), "sftp://rec/../../etc/shadow")


def test_unknown_location_and_unsupported_schemes_are_bad_input() -> None:
    settings = staging(rec=SFTP)
    with pytest.raises(BadUriError) as caught:
        resolve(settings, "sftp://nowhere/a.ts")
    assert caught.value.exit_code == 2
    for uri in ("http://x/a.ts", "relative/a.ts", "", "/a\0b"):
        with pytest.raises(BadUriError):
            resolve(settings, uri)


def test_recorder_paths_map_to_a_local_mount_before_sftp() -> None:
    settings = staging(
        rec={**SFTP, "recorder_path": "/home/epg/recorded"},
        nas={"kind": "local", "path": "/mnt/rec", "recorder_path": "/home/epg/recorded"},
    )
    target = resolve(settings, "/home/epg/recorded/sub/a.ts")
    assert (target.kind, target.location, target.path) == ("local", "nas", "/mnt/rec/sub/a.ts")
    only_sftp = staging(rec={**SFTP, "recorder_path": "/home/epg/recorded"})
    target = resolve(only_sftp, "/home/epg/recorded/sub/a.ts")
    assert (target.kind, target.path) == ("sftp", "/srv/rec/sub/a.ts")
    assert resolve(only_sftp, "/elsewhere/a.ts").kind == "local"


def test_sftp_uri_builds_what_resolve_reads() -> None:
    uri = sftp_uri("rec", "/a/$(x) 'q'.ts")
    assert resolve(staging(rec=SFTP), uri).path == "/srv/rec/a/$(x) 'q'.ts"


def test_scratch_and_temporary_names_never_carry_hostile_characters() -> None:
    hostile = "sftp://rec/$(rm -rf ~)\n'x' 録画.ts"
    name = scratch_path(Path("/s"), hostile).name
    assert name.startswith("src-") and name.endswith(".ts") and name.isascii()
    assert scratch_path(Path("/s"), "sftp://rec/a.$(x)").suffix == ""
    temp = temp_name("/out/dir/" + "長" * 200 + ".mp4", "0123456789abcdef0123-a1b2c3d4e5f6")
    assert temp.startswith("/out/dir/.kamado-") and len(temp.rsplit("/", 1)[1]) < 64
    with pytest.raises(ValueError, match="tag"):
        temp_name("/out/x.mp4", "../x")


@pytest.mark.parametrize("host", ["kamado@recorder", "-oProxyCommand=touch x", "rec order"])
def test_an_sftp_host_that_ssh_would_read_as_a_user_or_an_option_is_refused(host: str) -> None:
    with pytest.raises(ValidationError, match="host"):
        SftpLocation(kind="sftp", host=host, user="u", key_file=Path("/k"), known_hosts=Path("/kh"))


def test_a_job_naming_a_location_this_worker_lacks_says_what_to_define() -> None:
    for settings in (staging(), staging(rec=SFTP)):
        with pytest.raises(BadUriError) as caught:
            resolve(settings, "sftp://recorder/recorded/番組.ts")
        message = str(caught.value)
        assert "define [staging.locations.recorder] on this worker" in message, message
        assert 'kind = "sftp"' in message and "known_hosts" in message
        assert caught.value.location == "recorder"


def test_connecting_to_an_undefined_location_says_what_to_define() -> None:
    from worker.staging.connection import connect

    with pytest.raises(BadUriError, match=r"define \[staging\.locations\.recorder\] on this"):
        connect(staging(), "recorder")
