"""Which INT8 path keeps the bundled detector's accuracy? (issue: "measure both, keep the better")

    python benchmarks/quant_paths.py [--images 500] [--calib 200] [--repeats 5]

Candidates, all static INT8 with per-channel weights, calibrated on the same images:
  aeq_edgekit      ai-edge-quantizer on the float TFLite, min/max calibration,
                   HARD_SWISH kept float (edgekit's default)
  aeq_defaults     ai-edge-quantizer static_wi8_ai8 as shipped (moving-average calibration)
  aeq_minmax_hsq   min/max calibration but HARD_SWISH quantized too
  pt2e             litert-torch PT2E (torchao prepare/convert, symmetric per-channel)

Each is scored against the PyTorch reference on the held-out sample images:
decision flips, SQNR, AUC, XNNPACK partitions and host latency (1 thread, median
of repeats, run side by side so the ratios are comparable). Writes
benchmarks/results/quant_paths.{csv,md}.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.hostinfo import cpu_line

os.environ.setdefault("TQDM_DISABLE", "1")
RESULTS = Path(__file__).resolve().parent / "results"


def _data(n_images: int, n_calib: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from edgekit.sample import IMAGE_SIZE, MEAN, SAMPLE_SEED, STD
    from edgekit.sample.synth import make_batch

    calib_u8, _ = make_batch(SAMPLE_SEED + 1, 0, n_calib, IMAGE_SIZE)  # calibration: other images
    eval_u8, labels = make_batch(SAMPLE_SEED, 0, n_images, IMAGE_SIZE)

    def prep(u8: np.ndarray) -> np.ndarray:
        x = (u8.astype(np.float32) / 255.0 - MEAN) / STD
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    return prep(calib_u8), prep(eval_u8), labels


def pt2e_int8(model: Any, calib: np.ndarray) -> bytes:
    """litert-torch's PT2E path: torchao prepare/convert with symmetric per-channel weights, calibrated on ``calib``."""
    import litert_torch
    import torch
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e import quantize_pt2e

    x = torch.from_numpy(calib[:1])
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True)
    )
    gm = torch.export.export(model, (x,)).module()
    gm = quantize_pt2e.prepare_pt2e(gm, quantizer)
    with torch.no_grad():
        for i in range(len(calib)):
            gm(torch.from_numpy(calib[i : i + 1]))
    gm = quantize_pt2e.convert_pt2e(gm, fold_quantize=False)
    edge = litert_torch.convert(gm, (x,), quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer))
    return bytes(edge.model_content())


def _aeq(ctx: Any, minmax: bool, float_hardswish: bool) -> bytes:
    from ai_edge_quantizer import calibrator, quantizer, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName
    from ai_edge_quantizer.utils import qsv_utils

    from edgekit.exporters.tflite import float_tflite, static_int8

    if minmax and float_hardswish:
        return static_int8(ctx)
    base = float_tflite(ctx)
    rm = recipe_manager.RecipeManager()
    rm.add_static_config(".*", TFLOperationName.ALL_SUPPORTED, 8, 8)
    for op in ("INPUT", "OUTPUT", *(["HARD_SWISH"] if float_hardswish else [])):
        rm.add_quantization_config(".*", TFLOperationName(op), algorithm_key=AlgorithmName.NO_QUANTIZE)
    recipe = rm.get_quantization_recipe()
    kwargs = {"qsv_update_func": qsv_utils.min_max_update} if minmax else {}
    cal = calibrator.Calibrator(base, num_threads=2, **kwargs)
    cal.calibrate({"serving_default": [{"args_0": b} for b in ctx.calibration_batches()]}, rm)
    return bytes(
        quantizer.Quantizer(base, recipe)
        .quantize(cal.get_model_qsvs(), enable_progress_report=False)
        .quantized_model
    )


def _latency_ms(path: Path, x: np.ndarray, repeats: int, runs: int = 30) -> float:
    from edgekit.runners.litert import LiteRTRunner

    r = LiteRTRunner(path, num_threads=1)
    for _ in range(5):
        r.infer({r.input_name: x})
    medians = []
    for _ in range(repeats):
        t = []
        for _ in range(runs):
            s = time.perf_counter()
            r.infer({r.input_name: x})
            t.append(time.perf_counter() - s)
        medians.append(float(np.median(t)))
    return float(np.median(medians)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--calib", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch
    from sklearn.metrics import roc_auc_score

    from edgekit._capture import captured_output
    from edgekit.exporters import ExportContext
    from edgekit.exporters.tflite import float_tflite
    from edgekit.parity import compare, fake_scores, sqnr_db
    from edgekit.runners import run_batch
    from edgekit.runners.litert import LiteRTRunner
    from edgekit.runners.torch import TorchRunner
    from edgekit.sample.bundle import load_sample_detector
    from edgekit.spec import DEFAULT_TOLERANCES, InputSpec, OutputSpec

    torch.set_num_threads(2)
    calib, x, labels = _data(args.images, args.calib)
    model = load_sample_detector()
    model.dropout = torch.nn.Identity()  # as edgekit's loader does: PT2E mis-scales the FC after a Dropout
    ref = run_batch(TorchRunner(model, (1, *x.shape[1:])), x)
    ctx = ExportContext(module=model, input_spec=InputSpec((1, *x.shape[1:])), calibration=calib)
    tmp = args.out / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    builders = {
        "fp32": lambda: float_tflite(ctx),
        "aeq_edgekit": lambda: _aeq(ctx, True, True),
        "aeq_defaults": lambda: _aeq(ctx, False, False),
        "aeq_minmax_hsq": lambda: _aeq(ctx, True, False),
        "pt2e": lambda: pt2e_int8(model, calib),
    }
    rows: list[dict[str, Any]] = []
    paths: dict[str, Path] = {}
    for name, build in builders.items():
        print(f"building {name}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        with captured_output():
            data = build()
        seconds = time.perf_counter() - start
        path = tmp / f"{name}.tflite"
        path.write_bytes(data)
        paths[name] = path
        runner = LiteRTRunner(path)
        out = run_batch(runner, x)
        result = compare(ref, out, OutputSpec(), DEFAULT_TOLERANCES["int8"])
        d = runner.delegation()
        rows.append(
            {
                "variant": name,
                "size_bytes": len(data),
                "export_s": round(seconds, 1),
                "flips": result.flips,
                "flip_pct": round(100 * result.flip_rate, 2),
                "sqnr_db": round(sqnr_db(ref, out), 1),
                "max_abs_diff": round(result.max_abs_diff, 3),
                "auc": round(float(roc_auc_score(labels, fake_scores(out, OutputSpec()))), 4),
                "xnnpack_partitions": d.partitions,
                "ops_outside_xnnpack": sum(d.undelegated.values()),
            }
        )
    # Latency side by side, interleaved, so machine noise hits every variant alike.
    lat: dict[str, list[float]] = {n: [] for n in paths}
    for _ in range(args.repeats):
        for name, path in paths.items():
            lat[name].append(_latency_ms(path, x[:1], repeats=1))
    base = float(np.median(lat["fp32"]))
    for row in rows:
        ms = float(np.median(lat[row["variant"]]))
        row["latency_ms_1thread"] = round(ms, 3)
        row["speed_vs_fp32"] = round(base / ms, 2)
    ref_auc = float(roc_auc_score(labels, fake_scores(ref, OutputSpec())))
    write(args.out, rows, ref_auc, len(x), len(calib))


def write(out: Path, rows: list[dict[str, Any]], ref_auc: float, n: int, n_calib: int) -> None:
    """CSV + markdown summary of the comparison."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [{**r, "cpu": cpu_line()} for r in rows]
    with open(out / "quant_paths.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [
        "# INT8 path comparison on the bundled sample detector",
        "",
        f"Machine: {cpu_line()}, Python {platform.python_version()}. "
        f"{n} held-out sample images, {n_calib} calibration images. PyTorch reference AUC {ref_auc:.4f}.",
        "Latency: LiteRT + XNNPACK, 1 thread, median of interleaved repeats on a shared machine: "
        "compare the ratios, not the milliseconds.",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "|" + "---|" * len(rows[0]),
    ]
    lines += ["| " + " | ".join(str(v) for v in r.values()) + " |" for r in rows]
    (out / "quant_paths.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
