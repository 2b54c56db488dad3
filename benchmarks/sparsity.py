"""Does pruning make the bundled detector smaller and (on ARM64) faster? (issue 6)

    python benchmarks/sparsity.py [--steps 200] [--images 500]

For each pruning recipe (edgekit prune with fine-tuning on the sample's training images):
  unstructured 50%   what the team's slides did: zeros spread over every layer
  xnnpack 80%        1x1 convs + the FC, element-wise (edgekit's default)
  block4 80%         the same layers in 4-output-channel blocks (ARM64's fastest kernels)
export dense FP32 and the three sparse-storage variants, then record: file size, the
sparsity lint's verdict, AUC on the held-out sample images, parity against the pruned
PyTorch model, host latency (x86 + AVX: XNNPACK keeps its dense kernels, so no change is
expected), and latency under `qemu-x86_64 -cpu Nehalem` (SSE only: the sparse kernels run),
all interleaved so that the ratios are comparable. Writes benchmarks/results/sparsity.{csv,md}.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.hostinfo import cpu_line, emulated_cpu_env

os.environ.setdefault("TQDM_DISABLE", "1")
RESULTS = Path(__file__).resolve().parent / "results"
RECIPES = (("unstructured", 0.5), ("xnnpack", 0.8), ("block4", 0.8))
VARIANTS = ("tflite_fp32", "tflite_sparse_fp32", "tflite_sparse_fp16", "tflite_sparse_int8w")

_QEMU_TIMER = """
import json, sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter
paths = json.loads(sys.argv[1])
x = np.load(sys.argv[2])
runs, times = {}, {}
for name, path in paths.items():
    it = Interpreter(model_path=path, num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    runs[name], times[name] = it, []
for _ in range(int(sys.argv[3])):
    for name, it in runs.items():
        t = time.perf_counter()
        it.invoke()
        times[name].append(time.perf_counter() - t)
print(json.dumps({n: 1000 * float(np.median(t)) for n, t in times.items()}))
"""


def _interleaved_host_ms(paths: dict[str, Path], x: np.ndarray, rounds: int = 7, per_round: int = 20) -> dict[str, float]:  # fmt: skip
    from edgekit.runners.litert import LiteRTRunner

    runners = {n: LiteRTRunner(p, num_threads=1) for n, p in paths.items()}
    times: dict[str, list[float]] = {n: [] for n in runners}
    for r in runners.values():
        r.infer({r.input_name: x})
    for _ in range(rounds):
        for n, r in runners.items():
            s = time.perf_counter()
            for _ in range(per_round):
                r.infer({r.input_name: x})
            times[n].append((time.perf_counter() - s) * 1000 / per_round)
    return {n: float(np.median(t)) for n, t in times.items()}


def _qemu_ms(paths: dict[str, Path], x: np.ndarray, rounds: int) -> dict[str, float] | None:
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", x)
        proc = subprocess.run(
            [qemu, "-cpu", "Nehalem", sys.executable, "-c", _QEMU_TIMER,
             json.dumps({n: str(p) for n, p in paths.items()}), str(Path(tmp) / "x.npy"), str(rounds)],
            capture_output=True, text=True, check=True, env=emulated_cpu_env("Nehalem"),
        )  # fmt: skip
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--qemu-rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch
    from sklearn.metrics import roc_auc_score

    from edgekit.compress.prune import PruneSpec, prune
    from edgekit.compress.workspace import sample_arrays
    from edgekit.exporters import ExportContext, get_variant
    from edgekit.exporters.sparsity import lint
    from edgekit.exporters.tflite_graph import TFLiteGraph
    from edgekit.loading import load_model
    from edgekit.parity import compare, fake_scores
    from edgekit.runners import run_batch
    from edgekit.runners.litert import LiteRTRunner
    from edgekit.runners.torch import TorchRunner
    from edgekit.sample.bundle import write_sample
    from edgekit.spec import DEFAULT_TOLERANCES, InputSpec, ModelSource, OutputSpec

    torch.set_num_threads(2)
    data = sample_arrays(n_val=args.images)
    x, labels = data.x_val, data.y_val
    rows: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="edgekit-sparsity-"))
    sample = write_sample(work / "sample", count=2)
    for pattern, level in RECIPES:
        t0 = time.perf_counter()
        pr = prune(PruneSpec(source=ModelSource(path=sample.model), out_dir=work / f"{pattern}{level}", sparsity=level, pattern=pattern, steps=args.steps))  # fmt: skip
        prune_s = time.perf_counter() - t0
        module = load_model(ModelSource(path=Path(pr.model))).module
        ref = run_batch(TorchRunner(module, (1, *x.shape[1:])), x)
        ctx = ExportContext(
            module=module, input_spec=InputSpec(shape=(1, *x.shape[1:])), calibration=data.x_train[:64]
        )
        paths: dict[str, Path] = {}
        for v in VARIANTS:
            try:
                blob = get_variant(v).build(ctx)
            except Exception as exc:  # recorded, not fatal: unstructured may leave nothing to encode
                rows.append({"recipe": f"{pattern} {level:.0%}", "variant": v, "error": str(exc)[:120]})
                continue
            path = work / f"{pattern}{level}_{v}.tflite"
            path.write_bytes(blob)
            paths[v] = path
            out = run_batch(LiteRTRunner(path), x)
            tol = DEFAULT_TOLERANCES[get_variant(v).precision]
            parity = compare(ref, out, OutputSpec(), tol)
            verdict = lint(TFLiteGraph(blob))
            region = max(verdict.regions, key=lambda r: r.ops, default=None)
            rows.append({
                "recipe": f"{pattern} {level:.0%}", "variant": v, "size_MB": round(len(blob) / 1e6, 3),
                "auc": round(float(roc_auc_score(labels, fake_scores(out, OutputSpec()))), 4),
                "torch_auc_before": pr.auc_before, "torch_auc_pruned_no_finetune": pr.auc_one_shot,
                "torch_auc_after": pr.auc_after, "prune_s": round(prune_s, 1),
                "flips": parity.flips, "parity": "pass" if parity.passed else "FAIL",
                "lint": verdict.verdict, "region_zero_ratio": round(region.zero_ratio, 3) if region else None,
                "lint_reason": verdict.reason[:100],
            })  # fmt: skip
        host = _interleaved_host_ms(paths, x[:1])
        qemu = _qemu_ms(paths, x[:1], args.qemu_rounds)
        for r in rows:
            if r["recipe"] == f"{pattern} {level:.0%}" and r["variant"] in paths:
                r["host_ms_1thread"] = round(host[r["variant"]], 3)
                r["host_x_dense"] = round(host[r["variant"]] / host["tflite_fp32"], 2)
                if qemu:
                    r["qemu_nehalem_ms"] = round(qemu[r["variant"]], 1)
                    r["qemu_x_dense"] = round(qemu[r["variant"]] / qemu["tflite_fp32"], 2)
        print(json.dumps(rows[-1]), flush=True)
    fp32_dense = next(r["size_MB"] for r in rows if r["variant"] == "tflite_fp32")
    for r in rows:
        if "size_MB" in r:
            r["x_smaller_than_dense_fp32"] = round(fp32_dense / r["size_MB"], 2)
    write(args.out, rows, args)
    shutil.rmtree(work, ignore_errors=True)


def write(out: Path, rows: list[dict[str, Any]], args: Any) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = [{**r, "cpu": cpu_line()} for r in rows]
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(out / "sparsity.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    cols = ("recipe", "variant", "size_MB", "x_smaller_than_dense_fp32", "auc", "flips", "lint", "region_zero_ratio", "host_x_dense", "qemu_x_dense")  # fmt: skip
    lines = [
        "# Sparsity on the bundled sample detector",
        "",
        f"`python benchmarks/sparsity.py --steps {args.steps} --images {args.images}`; AUC on {args.images} held-out sample "
        "images; `host_x_dense` = latency / dense FP32 latency on this x86 host (AVX: XNNPACK keeps dense kernels); "
        "`qemu_x_dense` = the same under `qemu-x86_64 -cpu Nehalem` (SSE only: the sparse kernels run). "
        "Speed-ups on a phone are only claimed as 'eligible on ARM64' (lint), never measured here.",
        "",
        f"Machine: {cpu_line()}.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for r in rows:
        lines.append(
            "| " + " | ".join(str(r.get(c, r.get("error", "-") if c == "lint" else "-")) for c in cols) + " |"
        )
    torch_rows = {r["recipe"]: r for r in rows if "torch_auc_after" in r}
    lines += ["", "PyTorch AUC before pruning / pruned without fine-tuning / after fine-tuning:", ""]
    for recipe, r in torch_rows.items():
        lines.append(
            f"- {recipe}: {r['torch_auc_before']:.4f} / {r['torch_auc_pruned_no_finetune']:.4f} / {r['torch_auc_after']:.4f} "
            f"(pruning + fine-tuning {r['prune_s']} s)"
        )
    (out / "sparsity.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
