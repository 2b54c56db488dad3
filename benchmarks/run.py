"""edgekit benchmark suite (thin, timm's benchmark.py style): every number the README quotes.

    python benchmarks/run.py            # full run (~20 min on 2 cores)
    python benchmarks/run.py --quick    # a few minutes: one tiny model, same code path
    make bench                          # the quick run

Writes CSVs (units in the column names) and ``summary.md`` plus two plots to ``--out``
(default benchmarks/results/). Timings on a shared machine are noisy: latency is the median
of interleaved repeats and the summary quotes ratios measured side by side in one run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.hostinfo import cpu_line

os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
VARIANTS = ("tflite_fp32", "tflite_fp16", "tflite_int8", "tflite_int8_dynamic", "onnx_fp32", "onnx_int8")
BITS = {"fp32": 32, "fp16": 16, "int8": 8}


_REPORT = """
import json as _json, resource as _resource
result["_peak_rss_mb"] = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024
print(_json.dumps(result))
"""


def _child(code: str, timeout: float = 1800) -> tuple[dict[str, Any], float, float]:
    """Run Python code (which sets ``result``) in a fresh process; returns (result, wall s, its own peak RSS MB)."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", code + _REPORT], capture_output=True, text=True, timeout=timeout,
                         cwd=ROOT, check=False)  # fmt: skip
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {run.stderr[-1500:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return result, wall, float(result.pop("_peak_rss_mb"))


def _model_code(name: str) -> str:
    if name == "sample_detector":
        return (
            "from edgekit.sample.bundle import load_sample_detector as f; m = f(); shape = (1, 3, 128, 128)"
        )
    if name.startswith("mobilenet_v2"):
        width = float(name.split("@")[1].removesuffix("quick")) if "@" in name else 1.0
        size = 96 if name.endswith("quick") else 224
        return f"from benchmarks.models import mobilenet_v2; m = mobilenet_v2({width}); shape = (1, 3, {size}, {size})"
    return "from benchmarks.models import efficientnet_b0; m = efficientnet_b0(); shape = (1, 3, 224, 224)"


def _save_model(name: str, folder: Path) -> tuple[Path, int, tuple[int, ...]]:
    """The model as a .pt2 (so every child loads it the same safe way); returns (path, params, shape)."""
    code = (
        _model_code(name)
        + f"""
import io, json, torch
ep = torch.export.export(m, (torch.zeros(shape),))
buf = io.BytesIO(); torch.export.save(ep, buf)
open({str(folder / "model.pt2")!r}, 'wb').write(buf.getvalue())
result = {{"params": sum(p.numel() for p in m.parameters()), "shape": list(shape)}}
"""
    )
    info, _, _ = _child(code)
    return folder / "model.pt2", int(info["params"]), tuple(info["shape"])


def _export_code(model: Path, out: Path, variants: tuple[str, ...], calib: Path, mean: float) -> str:
    return f"""
import json
from pathlib import Path
from edgekit.exporting import export
from edgekit.spec import ExportSpec, ModelSource
m = export(ExportSpec(source=ModelSource(path=Path({str(model)!r})), out_dir=Path({str(out)!r}), variants={variants!r},
           calib_dir=Path({str(calib)!r}), calib_samples=100, parity_samples=32, mean=({mean},)*3, std=(0.5,)*3,
           arm64="off"))  # the host's conversion cost alone: benchmarks/arm64.py measures the arm64 side
result = m.to_dict()
"""


def _bare_convert_code(model: Path) -> str:
    return f"""
import json, time, torch
t = time.perf_counter()
import litert_torch
ep = torch.export.load({str(model)!r})
x = next(n.meta["val"] for n in ep.graph.nodes if n.op == "placeholder" and n.name in set(ep.graph_signature.user_inputs))
data = litert_torch.convert(ep.module(), (torch.zeros(tuple(x.shape)),)).model_content()
result = {{"seconds": time.perf_counter() - t, "bytes": len(data)}}
"""


def _latency(
    files: dict[str, Path], model_pt2: Path, x: np.ndarray, threads: int, repeats: int, runs: int
) -> dict[str, float]:
    """Median (over interleaved repeats) of the median per-run latency, ms."""
    import torch

    from edgekit.runners.litert import LiteRTRunner
    from edgekit.runners.onnxruntime import OnnxRuntimeRunner

    torch.set_num_threads(threads)
    eager = torch.export.load(str(model_pt2)).module()
    runners: dict[str, Any] = {"torch_eager_fp32": None}
    for name, path in files.items():
        runners[name] = (
            LiteRTRunner(path, num_threads=threads)
            if path.suffix == ".tflite"
            else OnnxRuntimeRunner(path, threads)
        )
    xt = torch.from_numpy(x)

    def once(name: str) -> float:
        r = runners[name]
        start = time.perf_counter()
        if r is None:
            with torch.inference_mode():
                eager(xt)
        else:
            r.infer({r.input_name: x if r.input_shape == x.shape else x.transpose(0, 2, 3, 1).copy()})
        return time.perf_counter() - start

    for name in runners:
        for _ in range(3):
            once(name)
    medians: dict[str, list[float]] = {n: [] for n in runners}
    for _ in range(repeats):
        for name in runners:
            medians[name].append(float(np.median([once(name) for _ in range(runs)])))
    return {n: float(np.median(v)) * 1e3 for n, v in medians.items()}


def _peers(export_dir: Path, calib: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Peers' default recipes on the same model and calibration images, scored on the same parity inputs."""
    import onnxruntime.quantization as oq
    from ai_edge_quantizer import quantizer, recipe

    from edgekit.data.labels import label_of
    from edgekit.data.tensors import find_files, load_dataset, split_files
    from edgekit.parity import compare
    from edgekit.runners import run_batch
    from edgekit.runners.litert import LiteRTRunner
    from edgekit.runners.onnxruntime import OnnxRuntimeRunner
    from edgekit.spec import DEFAULT_TOLERANCES, InputSpec, OutputSpec, Preprocess

    x = np.load(export_dir / "parity_inputs.npy")
    ref = np.load(export_dir / "parity_reference.npy")
    # The same calibration images edgekit used (same deterministic split), never the parity inputs.
    pre_d = manifest["preprocess"]
    pre = Preprocess(**{**pre_d, "mean": tuple(pre_d["mean"]), "std": tuple(pre_d["std"])})
    files = find_files(calib)
    calib_files, _ = split_files(
        files, manifest["calibration"]["samples"], 32, 0, [label_of(f, calib) for f in files]
    )
    calib_x = load_dataset(calib_files, calib, pre, InputSpec(tuple(manifest["input"]["shape"]))).inputs
    rows = []

    def score(name: str, runner: Any) -> None:
        out = run_batch(runner, x)
        r = compare(ref, out, OutputSpec(), DEFAULT_TOLERANCES["int8"])
        rows.append({"recipe": name, "flips": r.flips, "samples": r.samples, "sqnr_db": round(r.sqnr_db, 1),
                     "max_abs_diff": round(r.max_abs_diff, 3)})  # fmt: skip

    fp32 = export_dir / next(v["file"] for v in manifest["variants"] if v["name"] == "tflite_fp32")
    for v in manifest["variants"]:
        if v["name"] in ("tflite_int8", "onnx_int8"):
            path = export_dir / v["file"]
            score(
                f"edgekit {v['name']}",
                LiteRTRunner(path) if path.suffix == ".tflite" else OnnxRuntimeRunner(path),
            )
    with tempfile.TemporaryDirectory() as tmp:
        dyn = quantizer.Quantizer(fp32.read_bytes(), recipe.dynamic_wi8_afp32()).quantize(
            enable_progress_report=False
        )
        Path(tmp, "dyn.tflite").write_bytes(bytes(dyn.quantized_model))
        score(
            "ai-edge-quantizer dynamic_wi8_afp32 (what other exporters ship as int8)",
            LiteRTRunner(Path(tmp, "dyn.tflite")),
        )
        static = quantizer.Quantizer(fp32.read_bytes(), recipe.static_wi8_ai8())
        qsv = static.calibrate(
            {"serving_default": [{"args_0": calib_x[i : i + 1]} for i in range(len(calib_x))]}
        )
        Path(tmp, "static.tflite").write_bytes(
            bytes(static.quantize(qsv, enable_progress_report=False).quantized_model)
        )
        score("ai-edge-quantizer static_wi8_ai8 defaults", LiteRTRunner(Path(tmp, "static.tflite")))
        onnx_fp32 = next(
            (export_dir / v["file"] for v in manifest["variants"] if v["name"] == "onnx_fp32"), None
        )
        if onnx_fp32 is not None:

            class Reader(oq.CalibrationDataReader):
                def __init__(self) -> None:
                    self.it = iter([{"input": calib_x[i : i + 1]} for i in range(len(calib_x))])

                def get_next(self) -> dict[str, np.ndarray] | None:
                    return next(self.it, None)

            oq.quantize_static(str(onnx_fp32), str(Path(tmp, "ort.onnx")), Reader())
            score("onnxruntime quantize_static defaults", OnnxRuntimeRunner(Path(tmp, "ort.onnx")))
    return rows


def _harness(file: Path, export_dir: Path, runs: int, repeats: int) -> dict[str, float]:
    """In-process LiteRT p50 vs the same model through `edgekit bench --device emulator-x86` (the same
    host kernels, so the difference is the harness), interleaved."""
    from edgekit.device.bench import BenchSpec, bench
    from edgekit.runners.litert import LiteRTRunner

    x = np.load(export_dir / "parity_inputs.npy")[:1]
    direct, emulated = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            runner = LiteRTRunner(file, num_threads=1)
            for _ in range(10):
                runner.infer({runner.input_name: x})
            t = []
            for _ in range(runs):
                s = time.perf_counter()
                runner.infer({runner.input_name: x})
                t.append(time.perf_counter() - s)
            direct.append(float(np.median(t)) * 1e3)
            report = bench(BenchSpec(target=file, out_dir=Path(tmp) / str(r), device="emulator-x86", runs=runs, warmup=10,
                                     threads=(1,), parity_samples=2))  # fmt: skip
            emulated.append(report.cells[0]["latency"]["p50"])
    d, e = float(np.median(direct)), float(np.median(emulated))
    return {
        "in_process_p50_ms": round(d, 4),
        "emulated_bench_p50_ms": round(e, 4),
        "overhead_pct": round(100 * (e / d - 1), 1),
    }


def _auc(files: dict[str, Path], model_pt2: Path, mean: float, n: int) -> dict[str, float]:
    """AUC on held-out sample images (only meaningful for the trained sample detector)."""
    import torch
    from sklearn.metrics import roc_auc_score

    from edgekit.parity import fake_scores
    from edgekit.runners import run_batch
    from edgekit.runners.litert import LiteRTRunner
    from edgekit.runners.onnxruntime import OnnxRuntimeRunner
    from edgekit.runners.torch import TorchRunner
    from edgekit.sample import SAMPLE_SEED
    from edgekit.sample.synth import make_batch
    from edgekit.spec import OutputSpec

    images, labels = make_batch(SAMPLE_SEED, 0, n, 128)
    x = np.ascontiguousarray(((images.astype(np.float32) / 255 - mean) / 0.5).transpose(0, 3, 1, 2))
    out = {
        "torch_eager_fp32": float(
            roc_auc_score(
                labels,
                fake_scores(
                    run_batch(TorchRunner(torch.export.load(str(model_pt2)).module(), (1, *x.shape[1:])), x),
                    OutputSpec(),
                ),
            )
        )
    }
    for name, path in files.items():
        runner = LiteRTRunner(path) if path.suffix == ".tflite" else OnnxRuntimeRunner(path)
        out[name] = float(roc_auc_score(labels, fake_scores(run_batch(runner, x), OutputSpec())))
    return out


def _r(v: Any) -> Any:
    return round(v, 1) if isinstance(v, float) else v


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    cpu = cpu_line()
    rows = [{**r, "cpu": cpu} for r in rows]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one tiny model, few repeats (the CI smoke)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or (RESULTS / ("quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    models = (
        ["mobilenet_v2@0.35quick"] if args.quick else ["sample_detector", "mobilenet_v2", "efficientnet_b0"]
    )
    repeats, runs = (2, 5) if args.quick else (5, 30)
    from edgekit.sample.bundle import write_sample

    work = Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    calib = write_sample(work / "sample", count=60 if args.quick else 300).data
    export_rows, size_rows, lat_rows, acc_rows, peer_rows, harness_rows, scale_rows = (
        [],
        [],
        [],
        [],
        [],
        [],
        [],
    )
    for name in models:
        print(f"== {name}", file=sys.stderr, flush=True)
        folder = work / name.replace("@", "_")
        folder.mkdir()
        pt2, n_params, _shape = _save_model(name, folder)
        mean = 0.5
        files: dict[str, Path] = {}
        variants = VARIANTS if not args.quick else ("tflite_fp32", "tflite_int8", "onnx_fp32", "onnx_int8")
        # one child per variant measures each export's own wall time and peak RSS; the quick smoke
        # exports them all in one child (the same code path, a third of the CI time)
        full_dir = folder / "all"
        full, full_wall, full_rss = _child(_export_code(pt2, full_dir, variants, calib, mean))
        for v in variants:
            vdir, wall, rss, m = full_dir, full_wall, full_rss, full
            if not args.quick:
                vdir = folder / v
                m, wall, rss = _child(
                    _export_code(pt2, vdir, (v,) if v == "tflite_fp32" else ("tflite_fp32", v), calib, mean)
                )
            rec = next(r for r in m["variants"] if r["name"] == v)
            files[v] = vdir / rec["file"]
            export_rows.append({"model": name, "variant": v, "wall_s": round(wall, 1), "convert_s": rec["export_seconds"],
                                "peak_rss_mb": round(rss), "flips": rec["parity"]["flips"], "sqnr_db": _r(rec["parity"]["sqnr_db"])})  # fmt: skip
            bits = BITS[rec["precision"]]
            size_rows.append({"model": name, "variant": v, "params": n_params, "size_bytes": rec["size_bytes"],
                              "floor_bytes": n_params * bits // 8, "size_over_floor": round(rec["size_bytes"] / (n_params * bits / 8), 3)})  # fmt: skip
            if v == "tflite_fp32":
                fp32_dir = vdir
        # The bare converter runs after edgekit's first export, so both see warm file caches.
        bare, bare_wall, bare_rss = _child(_bare_convert_code(pt2))
        export_rows.append({"model": name, "variant": "bare litert_torch.convert", "wall_s": round(bare_wall, 1),
                            "convert_s": round(bare["seconds"], 1), "peak_rss_mb": round(bare_rss)})  # fmt: skip
        if not args.quick:  # the quick smoke has no FP32-only export to compare
            fp32_wall = next(
                r["wall_s"] for r in export_rows if r["model"] == name and r["variant"] == "tflite_fp32"
            )
            export_rows.append({"model": name, "variant": "edgekit fp32 export / bare convert (wall, incl. load and parity)",
                                "wall_s": round(fp32_wall / bare_wall, 2)})  # fmt: skip
        x = np.load(full_dir / "parity_inputs.npy")[:1]
        for threads in (1, 2):
            lat = _latency(files, pt2, x, threads, repeats, runs)
            for v, ms in lat.items():
                lat_rows.append({"model": name, "variant": v, "threads": threads, "latency_ms_median": round(ms, 3),
                                 "speed_vs_torch_eager": round(lat["torch_eager_fp32"] / ms, 2)})  # fmt: skip
        for rec in full["variants"]:
            acc_rows.append({"model": name, "variant": rec["name"], "flips_vs_torch": rec["parity"]["flips"],
                             "parity_samples": rec["parity"]["samples"], "sqnr_db": _r(rec["parity"]["sqnr_db"])})  # fmt: skip
        if name == "sample_detector":
            for v, auc in _auc(files, pt2, mean, 500).items():
                acc_rows.append({"model": name, "variant": v, "auc_500_heldout": round(auc, 4)})
        peer_rows += [{"model": name, **r} for r in _peers(full_dir, calib, full)]
        harness_rows.append({"model": name, **_harness(files["tflite_fp32"], fp32_dir, runs, repeats)})
    if not args.quick:
        for target, width in (("1M", 0.75), ("5M", 1.55), ("20M", 3.1), ("60M", 5.35)):
            folder = work / f"scale_{target}"
            folder.mkdir()
            pt2, n_params, _ = _save_model(f"mobilenet_v2@{width}", folder)
            _, wall, rss = _child(_export_code(pt2, folder / "out", ("tflite_fp32",), calib, 0.5))
            scale_rows.append(
                {
                    "target": target,
                    "params": n_params,
                    "export_wall_s": round(wall, 1),
                    "peak_rss_mb": round(rss),
                }
            )
    for fname, rows in (("export.csv", export_rows), ("size.csv", size_rows), ("model_benchmark_host.csv", lat_rows),
                        ("accuracy.csv", acc_rows), ("peers.csv", peer_rows), ("harness.csv", harness_rows),
                        ("scaling.csv", scale_rows)):  # fmt: skip
        _write_csv(out / fname, rows)
    _summary(out, export_rows, size_rows, lat_rows, acc_rows, peer_rows, harness_rows, scale_rows, args.quick)
    print(f"results in {out}", file=sys.stderr)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(none)", ""]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys),
            *["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows], ""]  # fmt: skip


def _summary(out: Path, *tables: Any) -> None:
    export_rows, size_rows, lat_rows, acc_rows, peer_rows, harness_rows, scale_rows, quick = tables
    lines = [
        "# edgekit benchmarks" + (" (quick smoke)" if quick else ""),
        "",
        f"Machine: {cpu_line()}, Python "
        f"{platform.python_version()}; host CPU only (no phone). Latency: median of interleaved repeats; "
        "compare the ratios, not the milliseconds.",
        "",
    ]
    for title, rows in (("Export (wall time in a fresh process, peak RSS)", export_rows),
                        ("Size vs the physical floor (params x bits / 8)", size_rows),
                        ("Host latency (LiteRT + XNNPACK, ONNX Runtime CPU, torch eager)", lat_rows),
                        ("Accuracy (parity inputs; AUC on 500 held-out sample images for the trained detector)", acc_rows),
                        ("Peers' default INT8 recipes on the same model and data", peer_rows),
                        ("Emulated bench harness overhead (target within 5%)", harness_rows),
                        ("Export cost curve (MobileNetV2 widths, tflite_fp32)", scale_rows)):  # fmt: skip
        lines += [f"## {title}", "", *_table(rows)]
    (out / "summary.md").write_text("\n".join(lines), encoding="utf-8")
    _plots(out, size_rows, lat_rows, acc_rows)


def _plots(
    out: Path, size_rows: list[dict[str, Any]], lat_rows: list[dict[str, Any]], acc_rows: list[dict[str, Any]]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    auc = {r["variant"]: r["auc_500_heldout"] for r in acc_rows if "auc_500_heldout" in r}
    if not auc:
        return
    size = {r["variant"]: r["size_bytes"] / 1e6 for r in size_rows if r["model"] == "sample_detector"}
    lat = {
        r["variant"]: r["latency_ms_median"]
        for r in lat_rows
        if r["model"] == "sample_detector" and r["threads"] == 1
    }
    for fname, xs, label in (
        ("size_vs_auc.png", size, "size (MB)"),
        ("latency_vs_auc.png", lat, "host latency, 1 thread (ms)"),
    ):
        fig, ax = plt.subplots(figsize=(6, 4))
        for v, xv in xs.items():
            if v in auc:
                ax.scatter(xv, auc[v])
                ax.annotate(v, (xv, auc[v]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(label)
        ax.set_ylabel("AUC (500 held-out sample images)")
        fig.savefig(out / fname, dpi=110, bbox_inches="tight")
        plt.close(fig)


if __name__ == "__main__":
    main()
