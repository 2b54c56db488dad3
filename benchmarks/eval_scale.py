"""`edgekit eval` at data-set sizes: peak RSS and throughput, local and on Ray (issue 15).

    python benchmarks/eval_scale.py [--frames 100 150 1000 1500 10000] [--ray-frames 1000]

The bundled detector's architecture and weights exported at 320x320 (it is fully convolutional
up to a global mean, so the trained weights run at any size) to TFLite FP32 and ONNX FP32; the
data are FF++-shaped clips of 16 frames at 320x320 (``edgekit.sample.videos``' face images
scaled to the frame), so N frames = N/16 videos. Every run is a fresh ``edgekit eval
--no-heatmaps`` process; its peak RSS is the child's ``ru_maxrss`` seen by a wrapper process
that runs nothing else. Reported per run: wall time of the process, the time inside
``evaluate`` (eval.json ``timing.total``), the runtimes' own inference time (the sum of its
``infer:*`` entries), their ratio, frames/s and peak RSS. Ray rows: the same eval with
``--ray local --ray-workers 1`` and ``2`` (inference time is then summed over the actors).
Writes ``benchmarks/results/eval_scale.{csv,md}`` with the host CPU line.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgekit.hostinfo import cpu_line

RESULTS = Path(__file__).resolve().parent / "results"
SIZE = 320
FRAMES_PER_VIDEO = 16
EXE = Path(sys.executable).with_name("edgekit")

_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode
wall = time.perf_counter() - start
print(json.dumps({"code": code, "wall": wall, "rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def build_export(root: Path) -> Path:
    """The sample detector at 320 px, exported to TFLite FP32 and ONNX FP32 (no calibration)."""
    import torch

    from edgekit.api import export
    from edgekit.sample import MEAN, STD
    from edgekit.sample.bundle import load_sample_detector

    model = load_sample_detector()
    pt2 = root / "detector320.pt2"
    from edgekit.modelmeta import save_pt2

    save_pt2(model, pt2, example_input=torch.zeros(1, 3, SIZE, SIZE), mean=(MEAN,), std=(STD,))
    export(pt2, variants=["onnx"], out_dir=root / "export", parity_samples=16)
    return root / "export"


def build_videos(root: Path, frames: int) -> Path:
    """``frames // 16`` clips at 320x320, 1 real : 4 fake over the four FF++ methods."""
    import numpy as np
    from PIL import Image

    from edgekit.sample.synth import make_image
    from edgekit.sample.videos import METHODS, encode_mp4

    out = root / f"videos{frames}"
    if out.exists():
        return out
    for v in range(frames // FRAMES_PER_VIDEO):
        fake = v % 5 != 0
        folder = out / "fake" / METHODS[v % 4] if fake else out / "real"
        folder.mkdir(parents=True, exist_ok=True)
        face = make_image(9, v, fake, 128, family=METHODS[v % 4] if fake else None)
        big = np.asarray(
            Image.fromarray(face).resize((SIZE, SIZE), Image.Resampling.BICUBIC), dtype=np.float64
        )
        rng = np.random.default_rng(v)
        clip = [
            np.clip(big + rng.normal(0, 2.0, big.shape), 0, 255).astype(np.uint8)
            for _ in range(FRAMES_PER_VIDEO)
        ]
        (folder / f"{v:05d}.mp4").write_bytes(encode_mp4(clip))
    return out


def run_eval(export_dir: Path, data: Path, out: Path, extra: list[str]) -> dict[str, Any]:
    """One ``edgekit eval`` process under the RSS wrapper; its numbers and eval.json timing."""
    cmd = [str(EXE), "eval", str(export_dir), "--data", str(data), "--no-heatmaps", "--frames",
           str(FRAMES_PER_VIDEO), "-o", str(out), *extra]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, check=True)
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    if stats["code"] != 0:
        raise SystemExit(f"eval failed: {' '.join(cmd)}")
    meta = json.loads((out / "eval.json").read_text())
    timing = meta["timing"]
    infer = sum(v for k, v in timing.items() if k.startswith("infer:"))
    return {
        "frames": meta["samples"],
        "wall_s": round(stats["wall"], 2),
        "evaluate_s": round(timing["total"], 2),
        "decode_s": round(timing["decode"], 2),
        "inference_s": round(infer, 2),
        "evaluate_over_inference": round(timing["total"] / infer, 3),
        "frames_per_s": round(meta["samples"] / stats["wall"], 1),
        "peak_rss_mib": round(stats["rss_kib"] / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 150, 1000, 1500, 10000])
    parser.add_argument("--ray-frames", type=int, default=1000, help="0: no Ray rows")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work", type=Path, default=None, help="keep the data here (default: a temp dir)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="edgekit-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    export_dir = build_export(work)
    rows: list[dict[str, Any]] = []
    for n in args.frames:
        data = build_videos(work, n)
        row = {"mode": "local", "workers": 1, **run_eval(export_dir, data, work / f"eval{n}", [])}
        print(row, flush=True)
        rows.append(row)
    if args.ray_frames:
        data = build_videos(work, args.ray_frames)
        for workers in (1, 2):
            start = time.perf_counter()
            extra = ["--ray", "local", "--ray-workers", str(workers)]
            row = {
                "mode": "ray",
                "workers": workers,
                **run_eval(export_dir, data, work / f"ray{workers}", extra),
            }
            row["wall_s"] = round(time.perf_counter() - start, 2)
            print(row, flush=True)
            rows.append(row)
    cpu = cpu_line()
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "eval_scale.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, [*rows[0], "cpu"])
        w.writeheader()
        for r in rows:
            w.writerow({**r, "cpu": cpu})
    cols = list(rows[0])
    lines = [
        "# `edgekit eval` at scale: peak RSS and throughput",
        "",
        f"Host: {cpu}. Command: `python benchmarks/eval_scale.py`. Model: the sample detector at "
        f"{SIZE}x{SIZE}; variants pytorch_fp32 (baseline), tflite_fp32, onnx_fp32; data: {FRAMES_PER_VIDEO}-frame "
        "H.264 clips, --no-heatmaps. evaluate_over_inference = time inside evaluate / the runtimes' own "
        "inference time; on Ray the inference time is summed over the actors.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
        *("| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows),
        "",
    ]
    (args.out / "eval_scale.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
