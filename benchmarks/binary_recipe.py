"""The seeds' compression recipe on a BNext-style binary detector (issue 25, item 3).

    python benchmarks/binary_recipe.py [--train-steps 400] [--images 400]

1. Train tests/seeds.py's BNext-style network (1-bit 3x3 blocks, float stem, 1x1s and head;
   straight-through estimator) on the bundled sample's synthetic training images, and save it
   as a .pt2 that carries its preprocessing.
2. `edgekit sensitivity` on it: which ops INT8 hurts, which FCs INT4 can hold -> mixed_recipe.json.
3. `edgekit export` FP32, FP16, INT8 and the mixed INT8/INT4 recipe (`--recipe`), plus ONNX INT8.
4. `edgekit prune --pattern xnnpack` (the float 1x1 convs and the FC, the only pruned layers;
   the binary 3x3s are left as they are) at 50% and 80% with fine-tuning, then
   `edgekit export --sparse --int8` of each.
5. `edgekit eval` of every export on the sample's held-out images: size, AUC, accuracy, flips
   against its own PyTorch model.

Every step runs through the CLI a user would type. Writes benchmarks/results/binary_recipe.{csv,md}
with the host's CPU line (host kernels; the binary layers run on INT8/float kernels everywhere).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edgekit.hostinfo import cpu_line

os.environ.setdefault("TQDM_DISABLE", "1")
RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
EDGEKIT = [str(Path(sys.executable).with_name("edgekit"))]  # the console script a user runs


def _run(args: list[str], log: list[str]) -> float:
    """One CLI call; its wall time. A failure stops the benchmark with the command's own words."""
    start = time.perf_counter()
    done = subprocess.run([*EDGEKIT, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    seconds = time.perf_counter() - start
    log.append(f"$ edgekit {' '.join(args)}  # {seconds:.0f} s, exit {done.returncode}")
    if done.returncode not in (0, 1) or "error:" in done.stderr:  # exit 1 alone: a parity miss, which is data
        raise SystemExit(f"edgekit {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds


def _train(steps: int, out: Path) -> tuple[Path, float, float]:
    """Train the BNext-style detector on the sample's training images; save it as a .pt2."""
    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    from edgekit.compress.workspace import sample_arrays
    from edgekit.modelmeta import save_pt2
    from edgekit.sample import MEAN, STD
    from tests.seeds import build_bnext

    torch.manual_seed(0)
    data = sample_arrays(n_train=2000, n_val=400)
    size = data.x_train.shape[-1]
    model = build_bnext(classes=1, size=size).train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(steps):
        idx = rng.choice(len(data.x_train), 32, replace=False)
        x = torch.from_numpy(data.x_train[idx])
        y = torch.from_numpy(data.y_train[idx].astype(np.float32))[:, None]
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        scores = model(torch.from_numpy(data.x_val)).numpy()[:, 0]
    auc = float(roc_auc_score(data.y_val, scores))
    path = save_pt2(model, out / "bnext.pt2", example_input=torch.zeros(1, 3, size, size),
                    mean=(float(MEAN),) * 3, std=(float(STD),) * 3)  # fmt: skip
    return path, seconds, auc


def _rows(export_dir: Path, eval_dir: Path, recipe: str) -> list[dict[str, Any]]:
    manifest = json.loads((export_dir / "manifest.json").read_text())
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    binary = manifest.get("binary") or {}
    rows = []
    for v in manifest["variants"]:
        m = metrics["variants"].get(v["name"])
        parity = v.get("parity") or {}
        rows.append({
            "recipe": recipe, "variant": v["name"], "status": v["status"],
            "size_kb": round((v.get("size_bytes") or 0) / 1024, 1),
            "parity_flips": f"{parity.get('flips', '-')}/{parity.get('samples', '-')}",
            "sqnr_db": round(parity["sqnr_db"], 1) if parity.get("sqnr_db") is not None else "",
            "auc": round(m["frame"]["auc"], 4) if m and m["frame"]["auc"] is not None else "",
            "accuracy": round(m["frame"]["accuracy"], 4) if m else "",
            "eval_flips": m["flips_vs_baseline"] if m else "",
            "binary_int8": binary.get("int8_exact", "") if v["name"] == "tflite_int8" else "",
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-steps", type=int, default=400)
    parser.add_argument("--prune-steps", type=int, default=150)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    work = Path(tempfile.mkdtemp(prefix="edgekit-binary-"))
    log: list[str] = []
    model, train_s, train_auc = _train(args.train_steps, work)
    log.append(f"trained {args.train_steps} steps in {train_s:.0f} s; PyTorch val AUC {train_auc:.4f}")
    _run(["sample", "-o", str(work / "sample"), "--count", str(args.images)], log)
    data = work / "sample" / "data"
    _run(
        ["sensitivity", str(model), "--calib", str(data), "--data", str(data), "-o", str(work / "sens")], log
    )
    recipe = work / "sens" / "mixed_recipe.json"
    exports = {"dense": work / "x_dense"}
    _run(["export", str(model), "--fp16", "--int8", "--onnx", "--recipe", str(recipe), "--calib", str(data),
          "-o", str(exports["dense"])], log)  # fmt: skip
    for level in ("0.5", "0.8"):
        pruned = work / f"pruned{level}"
        _run(["prune", str(model), "--pattern", "xnnpack", "--sparsity", level, "--steps", str(args.prune_steps),
              "--data", str(data), "-o", str(pruned)], log)  # fmt: skip
        exports[f"xnnpack {level}"] = work / f"x_pruned{level}"
        _run(["export", str(pruned / "pruned.pt2"), "--sparse", "--int8", "--calib", str(data),
              "-o", str(exports[f"xnnpack {level}"])], log)  # fmt: skip
    rows: list[dict[str, Any]] = []
    for name, folder in exports.items():
        _run(["eval", str(folder), "--data", str(data), "--no-heatmaps", "-o", str(folder / "eval")], log)
        rows += _rows(folder, folder / "eval", name)
    write(args.out, rows, log, train_auc)


def write(out: Path, rows: list[dict[str, Any]], log: list[str], train_auc: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "binary_recipe.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cols = list(rows[0])
    lines = [
        "# The seeds' compression recipe on a BNext-style binary detector",
        "",
        f"Host: {cpu_line()}. `python benchmarks/binary_recipe.py` (defaults). The network: tests/seeds.py "
        f"`build_bnext` (4 binary 3x3 blocks, float stem/1x1s/FC), trained here on the sample's synthetic "
        f"images (PyTorch AUC {train_auc:.4f} on 400 held-out ones). Parity flips are against each export's "
        "own PyTorch model; eval flips against the PyTorch baseline on the eval images.",
        "",
        "Read the AUC column with care: this small binary network does not learn the sample's self-blended "
        "fakes in the benchmark's budget (AUC near 0.5 after training; the same loop trains the bundled "
        "float sample detector to 0.998 in 200 steps, and this network stays near 0.5 even with its sign "
        "ops replaced by identities, so it is the architecture at this width, not the binarization). What "
        "the table measures is the recipe's mechanics: sizes, INT8/INT4 and pruning parity against PyTorch, "
        "and whether the binary layers survive INT8 exactly.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
        *("| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows),
        "",
        "Commands and times:",
        "",
        *(f"    {line}" for line in log),
        "",
    ]
    (out / "binary_recipe.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
