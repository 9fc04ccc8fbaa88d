"""The probe's proof with real ffmpeg: wrong outputs are caught, low power is retried on
the cause ffmpeg names, and the configured profiles are the ones proven."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.unit.guest_agent import intel_gpu
from worker.backends import capabilities
from worker.backends.capabilities import (
    BackendReport,
    ProbeReport,
    Status,
    classify_failure,
    encode_hardware,
    failure_reason,
    needs_low_power,
    prove_backend,
    store_probe,
)
from worker.backends.gpu import GpuFound
from worker.backends.proof import check_sample, make_samples
from worker.encode.ffprobe import read_media
from worker.encode.sample import make_sample
from worker.profiles import BUILTIN_PROFILES, Backend, Profile
from worker.settings.model import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sd_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sd") / "sd.ts"
    return make_sample(path, seconds=0.5, width=720, height=480, aspect="4:3", bframes=2)


def encode(source: Path, output: Path, vf: str, *extra: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-vf", vf, "-c:v", "libx264",
         "-preset", "ultrafast", *extra, "-c:a", "aac", "-movflags", "+faststart", str(output)],
        check=True, timeout=120,
    )  # fmt: skip
    return output


@pytest.mark.parametrize(
    ("vf", "extra", "problem"),
    [
        ("bwdif,scale=720:480,setsar=1", (), "display aspect 1.5000 (720x480, SAR 1:1)"),
        ("bwdif=mode=send_field,scale=640:480,setsar=1", (), "frames, 16 expected"),
        ("scale=640:480,setsar=1", ("-flags", "+ildct+ilme"), "the output is not progressive"),
        (
            "bwdif=mode=send_frame,scale=320:240,setsar=1",
            (),
            "size 320x240, the argv asked 640x480",
        ),
    ],
    ids=["stretched", "field-rate", "interlaced", "wrong-size"],
)
def test_an_output_a_job_must_not_deliver_fails_the_proof_naming_why(
    sd_sample: Path, tmp_path: Path, vf: str, extra: tuple[str, ...], problem: str
) -> None:
    settings = Settings(state_dir=tmp_path)
    info = read_media("ffprobe", sd_sample)
    output = encode(sd_sample, tmp_path / "o.mp4", vf, *extra)
    assert problem in check_sample(output, info, BUILTIN_PROFILES["h264-x264"], settings)


def test_the_right_output_passes(sd_sample: Path, tmp_path: Path) -> None:
    info = read_media("ffprobe", sd_sample)
    output = encode(sd_sample, tmp_path / "o.mp4", "bwdif=mode=send_frame,scale=640:480,setsar=1")
    assert (
        check_sample(output, info, BUILTIN_PROFILES["h264-x264"], Settings(state_dir=tmp_path))
        == ""
    )


class VdencOnlyGpu:
    """A low-power-only GPU (Arc, Meteor Lake) as ffmpeg 5.1 answers it: the shader
    entrypoint is missing (the real message, intel_gpu.VAAPI_NO_ENTRYPOINT); with
    -low_power 1 it encodes, which libx264 stands in for so the output is real."""

    def __init__(self, *, low_power_works: bool = True) -> None:
        self.calls: list[bool] = []
        self.low_power_works = low_power_works
        self.real = capabilities.prove

    def __call__(self, backend: Backend, settings: Settings, sample: Path, workdir: Path,
                 **kw: object) -> BackendReport:  # fmt: skip
        low_power = bool(kw.get("low_power"))
        self.calls.append(low_power)
        failure = intel_gpu.VAAPI_NO_ENTRYPOINT
        if low_power and not self.low_power_works:
            failure = intel_gpu.QSV_LOW_POWER_UNSUPPORTED
        if not low_power or not self.low_power_works:
            return BackendReport(
                status=Status.FAILED,
                reason=failure_reason(failure.stderr, failure.returncode),
                kind=classify_failure(failure.stderr, failure.returncode),
                low_power_cause=not low_power and needs_low_power(failure.stderr),
            )
        profile = kw["profile"]
        assert isinstance(profile, Profile)
        report = self.real(Backend.X264, settings, sample, workdir, profile=profile)
        made = workdir / f"probe-x264-{sample.stem}.mp4"
        made.replace(workdir / f"probe-{backend.value}-{sample.stem}.mp4")
        return report.model_copy(update={"low_power": True})


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    workdir = tmp_path_factory.mktemp("samples")
    return make_samples(Settings(state_dir=workdir, guest={"probe_seconds": 0.2}), workdir)


def test_a_low_power_only_gpu_is_retried_with_low_power_and_proven_on_it(
    monkeypatch: pytest.MonkeyPatch, samples: dict[str, Path], tmp_path: Path
) -> None:
    gpu = VdencOnlyGpu()
    monkeypatch.setattr(capabilities, "prove", gpu)
    settings = Settings(state_dir=tmp_path)
    report = prove_backend(Backend.VAAPI, settings, samples, tmp_path, GpuFound())
    assert report.status is Status.PROVEN, report
    assert report.low_power
    assert [s.passed for s in report.samples] == [True, True, True]
    # One refusal, then low power for every sample: no second try without it.
    assert gpu.calls == [False, True, True, True]


def test_a_generation_known_to_need_low_power_starts_there(
    monkeypatch: pytest.MonkeyPatch, samples: dict[str, Path], tmp_path: Path
) -> None:
    gpu = VdencOnlyGpu()
    monkeypatch.setattr(capabilities, "prove", gpu)
    arc = GpuFound(generation="arc", low_power="required", va_driver="iHD")
    one = {"720x480i": samples["720x480i"]}
    report = prove_backend(Backend.VAAPI, Settings(state_dir=tmp_path), one, tmp_path, arc)
    assert report.status is Status.PROVEN and report.driver == "iHD"
    assert gpu.calls == [True]


def test_when_low_power_fails_too_the_report_names_the_shape_profile_and_reason(
    monkeypatch: pytest.MonkeyPatch, samples: dict[str, Path], tmp_path: Path
) -> None:
    monkeypatch.setattr(capabilities, "prove", VdencOnlyGpu(low_power_works=False))
    report = prove_backend(
        Backend.VAAPI, Settings(state_dir=tmp_path), samples, tmp_path, GpuFound()
    )
    assert report.status is Status.FAILED and report.kind == "option"
    assert report.reason == (
        "1440x1080i (h264-auto, h264-intel): exit 1: Low power mode is unsupported"
    )
    assert not any(s.passed for s in report.samples)


def test_every_configured_profile_is_proven_and_named(
    samples: dict[str, Path], tmp_path: Path
) -> None:
    sd = Profile(backends=[Backend.X264], height=480, quality=26)
    settings = Settings(state_dir=tmp_path, profiles={"sd-480": sd})
    report = prove_backend(Backend.X264, settings, samples, tmp_path, GpuFound())
    assert report.status is Status.PROVEN, report.reason
    named = {(s.shape, tuple(s.profiles)) for s in report.samples if s.passed}
    for shape in samples:
        assert (shape, ("h264-auto", "h264-x264")) in named
        assert (shape, ("sd-480",)) in named


def test_a_job_builds_the_argv_the_probe_proved(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    assert encode_hardware(settings, Backend.VAAPI) == ("", False)  # nothing cached yet
    proven = BackendReport(status=Status.PROVEN, low_power=True, driver="iHD")
    failed = BackendReport(status=Status.FAILED, low_power=True, driver="iHD")
    store_probe(
        settings, ProbeReport(backends={Backend.VAAPI: proven, Backend.QSV: failed}, probed_at=1.0)
    )
    assert json.loads((tmp_path / "probe.json").read_text())["backends"]["vaapi"]["low_power"]
    assert encode_hardware(settings, Backend.VAAPI) == ("iHD", True)
    assert encode_hardware(settings, Backend.QSV) == ("", False)
