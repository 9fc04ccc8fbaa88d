"""Picture quality of each profile's output: SSIM and PSNR, with the bitrate, per broadcast shape.

For every broadcast shape (1440x1080i and 1920x1080i HD, 720x480 4:3 and 16:9 SD, the
544x480 and 480x480 BS/CS formats) a clip is generated (worker/encode/sample.py) and encoded
with the exact ffmpeg argv each profile builds for libx264. Each output is compared,
frame by frame with ffmpeg's ``ssim`` and ``psnr`` filters, with a lossless encode of the
same filter chain (the same argv with ``-crf 0``): the reference has the profile's
deinterlace, scale and square pixels, so the figures are the encoder's loss alone, at
the same size. The baseline measured in the same run is a high-quality encode of the
same chain (``-crf 16 -preset slow``); each profile's SSIM is printed as a ratio to it.

    PYTHONPATH=. .venv/bin/python bench/quality.py [--seconds 4] [--config kamado.toml]
        [--profile NAME ...]

Without ``--profile`` it measures every profile that can run on libx264 (the built-in
ones and, with ``--config``, the config's), once per distinct argv. The figures do not
depend on the machine's load; only the encode times do.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from worker.encode.argv import build_command
from worker.encode.ffprobe import MediaInfo, read_media
from worker.encode.sample import make_sample
from worker.profiles import Backend, Profile, all_profiles
from worker.settings.model import Settings, load_settings

# (width, height, display aspect, interlaced): the shapes Japanese broadcasts carry.
SHAPES = [
    (1440, 1080, "16:9", True),
    (1920, 1080, "16:9", True),
    (720, 480, "4:3", True),
    (720, 480, "16:9", True),
    (544, 480, "4:3", True),
    (480, 480, "16:9", True),
]
SSIM_ALL = re.compile(r"SSIM .*All:([0-9.]+)")
PSNR_AVG = re.compile(r"PSNR .*average:([0-9.]+|inf)")


@dataclass
class Figures:
    ssim: float
    psnr: float
    kbps: float


def shape_name(shape: tuple[int, int, str, bool]) -> str:
    width, height, aspect, interlaced = shape
    return f"{width}x{height}{'i' if interlaced else 'p'} {aspect}"


def with_rate(argv: list[str], crf: int, preset: str) -> list[str]:
    """The same argv with another ``-crf`` and ``-preset`` (the filter chain unchanged)."""
    out = list(argv)
    out[out.index("-crf") + 1] = str(crf)
    out[out.index("-preset") + 1] = preset
    if crf == 0 and "-profile:v" in out:  # lossless needs x264's High 4:4:4 Predictive
        at = out.index("-profile:v")
        del out[at : at + 2]
    return out


def encode(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=1800)


def compare(output: Path, reference: Path, seconds: float) -> Figures:
    """SSIM (All) and PSNR (average) of ``output`` against ``reference``, and its bitrate."""
    graph = "[0:v]split[a][b];[1:v]split[c][d];[a][c]ssim;[b][d]psnr"
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-i", str(output), "-i", str(reference),
         "-lavfi", graph, "-f", "null", "-"],
        capture_output=True, text=True, timeout=1800, check=True,
    )  # fmt: skip
    ssim = SSIM_ALL.search(done.stderr)
    psnr = PSNR_AVG.search(done.stderr)
    if ssim is None or psnr is None:
        raise SystemExit(f"ffmpeg printed no SSIM/PSNR for {output}:\n{done.stderr[-2000:]}")
    value = psnr.group(1)
    kbps = output.stat().st_size * 8 / seconds / 1000
    return Figures(float(ssim.group(1)), float("inf") if value == "inf" else float(value), kbps)


def x264_profiles(settings: Settings, names: list[str]) -> dict[str, Profile]:
    """The profiles to measure: the named ones, or every one that can run on libx264."""
    known = all_profiles(settings.profiles)
    if names:
        missing = [n for n in names if n not in known]
        if missing:
            raise SystemExit(f"unknown profile(s): {', '.join(missing)}; known: {sorted(known)}")
        chosen = {n: known[n] for n in names}
    else:
        chosen = {n: p for n, p in known.items() if Backend.X264 in p.backends}
        # The source's size too, as an archive profile would keep it.
        chosen.setdefault("source size", Profile(backends=[Backend.X264], height="source"))
    bad = [n for n, p in chosen.items() if Backend.X264 not in p.backends]
    if bad:
        raise SystemExit(f"profile(s) {', '.join(bad)} do not accept x264")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="clip length")
    parser.add_argument("--config", type=Path, help="a kamado.toml whose profiles to add")
    parser.add_argument("--profile", action="append", default=[], help="only these profiles")
    args = parser.parse_args()
    settings = load_settings(args.config) if args.config else Settings()
    profiles = x264_profiles(settings, args.profile)

    with tempfile.TemporaryDirectory(prefix="kamado-quality-") as tmp:
        root = Path(tmp)
        print(f"clips: {args.seconds:g} s each; SSIM/PSNR against a lossless encode of the "
              "same filter chain; baseline: crf 16, preset slow")  # fmt: skip
        header = (f"{'shape':<18} {'profile':<24} {'size':>9} {'kbit/s':>8} {'SSIM':>7} "
                  f"{'PSNR dB':>8} {'SSIM / baseline':>16}")  # fmt: skip
        print(header)
        ratios: list[float] = []
        for shape in SHAPES:
            width, height, aspect, interlaced = shape
            source = make_sample(
                root / f"{width}x{height}-{aspect.replace(':', 'x')}.ts",
                seconds=args.seconds, width=width, height=height, aspect=aspect,
                interlaced=interlaced,
            )  # fmt: skip
            info = read_media("ffprobe", source)
            seen: dict[tuple[str, ...], str] = {}
            for name, profile in profiles.items():
                out, reference, baseline = (root / n for n in ("out.mp4", "ref.mp4", "base.mp4"))

                def argv_to(
                    path: Path,
                    profile: Profile = profile,
                    info: MediaInfo = info,
                    source: Path = source,
                ) -> list[str]:
                    return build_command(Backend.X264, profile, info, source, path).argv

                argv = argv_to(out)
                key = tuple(argv)
                if key in seen:
                    print(f"{shape_name(shape):<18} {name:<24} (same argv as {seen[key]})")
                    continue
                seen[key] = name
                encode(with_rate(argv_to(reference), 0, "ultrafast"))
                encode(with_rate(argv_to(baseline), 16, "slow"))
                encode(argv)
                probed = read_media("ffprobe", out)
                assert probed.video is not None
                got = compare(out, reference, args.seconds)
                base = compare(baseline, reference, args.seconds)
                ratio = got.ssim / base.ssim
                ratios.append(ratio)
                size = f"{probed.video.width}x{probed.video.height}"
                print(f"{shape_name(shape):<18} {name:<24} {size:>9} {got.kbps:>8.0f} "
                      f"{got.ssim:>7.4f} {got.psnr:>8.2f} {ratio:>16.4f}")  # fmt: skip
        print(f"median SSIM ratio to the crf-16 baseline: {statistics.median(ratios):.4f}")


if __name__ == "__main__":
    main()
