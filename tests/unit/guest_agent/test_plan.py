"""Which queues a guest serves, from a probe: GPU only when proven, CPU only when allowed."""

from __future__ import annotations

import pytest

from guest_agent.plan import NothingToServe, make_plan
from guest_agent.probe import GuestProbe
from guest_agent.system import Driver, FfmpegBuild, VaInfo, parse_vainfo
from tests.unit.guest_agent import intel_gpu
from worker.backends.capabilities import BackendReport, Status, failure_reason
from worker.profiles import QUEUE_CPU, QUEUE_GPU, Backend
from worker.settings.model import Settings


def failed(failure: intel_gpu.Failure) -> BackendReport:
    return BackendReport(
        status=Status.FAILED,
        kind=failure.kind,
        reason=failure_reason(failure.stderr, failure.returncode),
    )


def probe(qsv: BackendReport, vaapi: BackendReport, vainfo: VaInfo) -> GuestProbe:
    return GuestProbe(
        hostname="guest",
        backends={
            Backend.QSV: qsv,
            Backend.VAAPI: vaapi,
            Backend.X264: BackendReport(status=Status.PROVEN, fps=48.0),
        },
        render_node="/dev/dri/renderD128",
        render_nodes=[],
        driver=Driver(libva_driver_name="i965", configured="i965", installed=["i965", "iHD"]),
        vainfo=vainfo,
        ffmpeg=FfmpegBuild(version="ffmpeg version 5.1.9", encoders={}, decoders={}, filters={}),
        probed_at=0.0,
    )


@pytest.fixture
def haswell_probe() -> GuestProbe:
    """A Haswell guest: h264_qsv fails as on libva#436, i965 VAAPI encodes."""
    return probe(
        failed(intel_gpu.HASWELL_QSV_INVALID_HANDLE),
        BackendReport(status=Status.PROVEN, fps=182.0),
        parse_vainfo(intel_gpu.HASWELL_VAINFO, 0),
    )


@pytest.fixture
def gpu_less_probe() -> GuestProbe:
    """A guest whose GPU is not passed through: both hardware paths find no device."""
    return probe(
        failed(intel_gpu.QSV_DEVICE_CREATION_FAILED),
        failed(intel_gpu.VAAPI_NO_DISPLAY),
        parse_vainfo(intel_gpu.VAINFO_NO_DRIVER, 255),
    )


def settings(**guest: object) -> Settings:
    return Settings(broker_url="redis://localhost:6379/0", guest=guest)


def test_haswell_serves_the_gpu_queue_with_vaapi_and_its_speed(haswell_probe: GuestProbe) -> None:
    plan = make_plan(settings(), haswell_probe)
    assert plan.queues == [QUEUE_GPU]
    assert plan.usable == [Backend.VAAPI, Backend.X264]
    assert plan.fps["vaapi"] == 182.0
    (problem,) = plan.problems
    assert problem.backend == "qsv"
    assert problem.kind == "hardware"
    assert "invalid handle (-6)" in problem.reason


def test_software_work_adds_the_cpu_queue(haswell_probe: GuestProbe) -> None:
    plan = make_plan(settings(take_software_work=True), haswell_probe)
    assert plan.queues == [QUEUE_GPU, QUEUE_CPU]


def test_without_hardware_only_software_work_is_served(gpu_less_probe: GuestProbe) -> None:
    plan = make_plan(settings(take_software_work=True), gpu_less_probe)
    assert plan.queues == [QUEUE_CPU]
    assert plan.usable == [Backend.X264]
    assert {p.backend for p in plan.problems} == {"qsv", "vaapi"}


def test_without_hardware_and_without_software_work_it_refuses_with_each_reason(
    gpu_less_probe: GuestProbe,
) -> None:
    with pytest.raises(NothingToServe) as caught:
        make_plan(settings(), gpu_less_probe)
    message = str(caught.value)
    assert "guest.take_software_work is false" in message
    assert "No VA display found for device /dev/dri/renderD128." in message
    assert "Device creation failed: -542398533." in message
    assert caught.value.exit_code == 3, "its own code: the unit does not restart on it"


def test_backends_claimed_in_the_config_are_used_as_given(gpu_less_probe: GuestProbe) -> None:
    claimed = Settings(
        broker_url="redis://localhost:6379/0",
        worker={"backends": ["vaapi", "x264"]},
    )
    plan = make_plan(claimed, gpu_less_probe)
    assert plan.claimed
    assert plan.queues == [QUEUE_GPU]
    assert plan.candidates == [Backend.VAAPI, Backend.X264]
    assert plan.software == [Backend.X264]
