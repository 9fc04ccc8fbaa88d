"""The seed's topology in one real run (worker/tour/): recorder, host agent, booted guest.

The recorder (a network namespace) runs Redis, sshd and `kamado scheduler run`; its
EPGStation hook submits an h264-auto job. The host (another namespace) runs `kamado host
run` on libvirt's embedded QEMU driver; it boots a real guest (Debian's kernel, TCG) whose
init runs `kamado guest run` from the host's venv over 9p. The guest's only network is
QEMU's user network with two forwards to the recorder (Redis and sshd).

Act one: the whole path to a verified MP4 pushed back over SFTP, then the idle ACPI
shutdown. Act two: QEMU killed mid-encode; the VM restarted; the job done exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.media import leftovers
from worker.broker.registry import JobRecord
from worker.jobs import JobState
from worker.tour import acts, rig
from worker.tour.acts import Act
from worker.tour.watch import Event, Watch

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[rig.Topology, Watch]]:
    """Both boxes up with their services; the guest is booted by the agent when work comes."""
    why = rig.missing()
    if why:
        pytest.skip(why)
    topo = rig.Topology(tmp_path_factory.mktemp("tour")).start()
    assert topo.client is not None and topo.registry is not None

    def say(event: Event) -> None:
        print(f"{event.at:7.1f}s {event.box:>8}: {event.what}")

    try:
        yield topo, Watch(topo.client, topo.registry, "host", rig.GUEST_WORKER, say)
    finally:
        topo.close()


def one_output(act: Act) -> list[str]:
    """The files in recorded/ that carry the recording's stem."""
    recorded = act.recording.parent
    return sorted(p.name for p in recorded.iterdir() if p.stem == act.recording.stem)


def check_delivered(act: Act, record: JobRecord) -> None:
    """Done once, by the guest, on x264; one verified MP4 beside the untouched recording."""
    assert record.state is JobState.DONE, record.error
    assert [a.outcome for a in record.history].count("done") == 1, record.history
    assert record.worker == rig.GUEST_WORKER
    assert record.backend == "x264"
    assert record.job.profile == "h264-auto"
    assert record.job.source == f"sftp://recorder/{act.recording.name}"
    assert record.result is not None and record.result["video_codec"] == "h264"
    assert act.output.stat().st_size == record.result["size_bytes"]
    assert acts.sha256(act.recording) == act.digest_before, "the source changed"
    assert one_output(act) == sorted([act.recording.name, act.output.name])
    assert leftovers(act.recording.parent) == []


def played(
    tour: tuple[rig.Topology, Watch], act_of: Callable[[rig.Topology, Watch], Act]
) -> tuple[Act, JobRecord]:
    """Play one act; its job's record, checked as delivered."""
    act = act_of(*tour)
    record = tour[0].job(act.job_id)
    assert record is not None
    check_delivered(act, record)
    return act, record


def test_act_one_the_hook_boots_the_guest_which_proves_x264_and_delivers(
    tour: tuple[rig.Topology, Watch],
) -> None:
    _, watch = tour
    act, record = played(tour, acts.act_one)
    # The job waited on encode.gpu (the host could wake hardware) until the guest proved
    # only x264; then it moved to encode.cpu, which the guest serves.
    assert watch.first("job", "queued on encode.gpu") is not None
    assert record.queue == "encode.cpu"
    beat = watch.first_beat
    assert beat is not None and [b.backend for b in beat.backends] == ["x264"]
    assert beat.queues == ["encode.cpu"]
    problems = {p.backend: p for p in beat.problems}
    assert set(problems) == {"qsv", "vaapi"}
    for problem in problems.values():
        assert problem.status == "failed" and problem.kind == "hardware"
        assert "renderD128" in problem.reason, problem.reason  # ffmpeg's own words
    print(f"act one: hook → output verified {act.hook_to_verified:.1f} s, "
          f"boot → first heartbeat {act.boot_to_beat:.1f} s")  # fmt: skip


def test_act_two_qemu_killed_mid_encode_the_job_ends_done_once_then_the_guest_idles_off(
    tour: tuple[rig.Topology, Watch],
) -> None:
    topo, watch = tour
    act, record = played(tour, acts.act_two)
    assert act.killed_at is not None
    outcomes = [a.outcome for a in record.history]
    assert len(outcomes) >= 2 and outcomes[-1] == "done", outcomes  # the killed attempt too
    # Both attempts were the guest's: the first on the VM that was killed.
    assert {a.worker for a in record.history} == {rig.GUEST_WORKER}
    restart = watch.first("vm", "restart after the VM stopped", act.killed_at)
    assert restart is not None
    # No work left: after its idle time the agent shut the guest down by ACPI, which the
    # guest obeyed (a shutdown, not a destroy).
    assert watch.first("vm", "agent: shutdown: idle for", act.done_at) is not None
    assert act.shut_off_at is not None
    console = topo.layout.serial_log.read_text("utf-8", "replace")
    assert "acpid: PWRF/00000080" in console
    # Nothing else of act one's job changed.
    first = next(r for r in topo.jobs() if r.job.source.endswith("$(x).ts"))
    assert first.state is JobState.DONE
    print(f"act two: hook → output verified {act.hook_to_verified:.1f} s, "
          f"restart → first heartbeat {act.boot_to_beat:.1f} s")  # fmt: skip


def test_the_guest_reaches_only_what_qemu_forwards(tour: tuple[rig.Topology, Watch]) -> None:
    """The VM's only network: restrict=on and two forwards to the recorder."""
    topo, _ = tour
    text = topo.layout.config(rig.HOST).read_text()
    assert "restrict=on" in text
    assert text.count("guestfwd=") == 2
    routes = topo.net.run(rig.HOST, ["ip", "-4", "route", "show"]).stdout
    assert "default" not in routes


def test_the_tour_cleans_up_after_itself(tmp_path: Path) -> None:
    """Closing a topology leaves no namespace and no process of it behind."""
    why = rig.missing()
    if why:
        pytest.skip(why)
    topo = rig.Topology(tmp_path / "t").start()
    names = dict(topo.net.hosts)
    pids = [d.pid for d in (topo.scheduler, topo.agent) if d is not None]
    topo.close()
    import subprocess

    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(name in listed for name in names.values())
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
