"""Bench results on disk: ``bench.jsonl`` (one finished cell per line, appended at once)
and timm-style ``model_benchmark_<device>.csv`` re-rendered atomically after each cell."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

from edgekit._io import atomic_write_text, not_a_link
from edgekit.validate import finite_json, parse_json

JSONL = "bench.jsonl"
CSV_COLUMNS = (
    "model", "variant", "runtime", "device", "device_model", "emulated", "accelerator", "accelerator_used",
    "accelerated_fraction", "threads",
    "runs", "infer_p50_ms", "infer_p90_ms", "infer_mean_ms", "infer_std_ms", "infer_trimmed_mean_ms",
    "load_ms", "first_infer_ms", "peak_ram_mb", "ram_budget_mb", "budget_ok", "parity_ok", "flips_vs_torch",
    "sqnr_vs_host_db", "status",
)  # fmt: skip


def read_cells(out_dir: Path) -> list[dict[str, Any]]:
    """Every cell recorded so far (a torn last line, from a crash mid-write, is ignored)."""
    path = Path(out_dir) / JSONL
    if not path.exists():
        return []
    cells = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            cell = parse_json(line, "bench.jsonl", error=ValueError)
        except ValueError:  # a torn or hostile line: that cell is measured again
            continue
        if (
            isinstance(cell, dict)
            and isinstance(cell.get("key"), str)
            and isinstance(cell.get("device"), str)
        ):
            cells.append(cell)
    return cells


def append_cell(out_dir: Path, cell: dict[str, Any]) -> None:
    """Append one cell to bench.jsonl (fsynced) and refresh that device's CSV."""
    path = not_a_link(Path(out_dir) / JSONL)
    line = json.dumps(finite_json(cell), ensure_ascii=False, allow_nan=False) + "\n"
    with open(path, "a+b") as fh:
        # a crash mid-write leaves a torn last line: end it, so this record is not glued onto it
        if fh.seek(0, os.SEEK_END) > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
        fh.write(line.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())
    write_csv(out_dir, str(cell["device"]))


def _row(cell: dict[str, Any]) -> dict[str, Any]:
    lat = cell.get("latency") or {}
    return {
        "model": cell.get("model"),
        "variant": cell.get("variant"),
        "runtime": cell.get("runtime", "litert"),
        "device": cell.get("device"),
        "device_model": cell.get("device_model"),
        "emulated": cell.get("emulated"),
        "accelerator": cell.get("accelerator"),
        "accelerator_used": cell.get("accelerator_used"),
        "accelerated_fraction": cell.get("accelerated_fraction"),
        "threads": cell.get("threads"),
        "runs": cell.get("runs"),
        "infer_p50_ms": lat.get("p50"),
        "infer_p90_ms": lat.get("p90"),
        "infer_mean_ms": lat.get("mean"),
        "infer_std_ms": lat.get("std"),
        "infer_trimmed_mean_ms": lat.get("trimmed_mean"),
        "load_ms": cell.get("load_ms"),
        "first_infer_ms": cell.get("first_inference_ms"),
        "peak_ram_mb": cell.get("peak_ram_mb"),
        "ram_budget_mb": cell.get("ram_budget_mb"),
        "budget_ok": cell.get("budget_ok"),
        "parity_ok": cell.get("parity_ok"),
        "flips_vs_torch": (cell.get("parity_vs_torch") or {}).get("flips"),
        "sqnr_vs_host_db": (cell.get("parity_vs_host") or {}).get("sqnr_db"),
        "status": cell.get("status"),
    }


def csv_path(out_dir: Path, device: str) -> Path:
    """``model_benchmark_<device>.csv`` with the serial made file-name safe."""
    return Path(out_dir) / f"model_benchmark_{re.sub(r'[^A-Za-z0-9._-]', '_', device)}.csv"


def write_csv(out_dir: Path, device: str) -> Path:
    """Re-render the device's CSV from bench.jsonl."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS))
    w.writeheader()
    for cell in read_cells(out_dir):
        if cell.get("device") == device:
            w.writerow(_row(cell))
    path = csv_path(out_dir, device)
    atomic_write_text(path, buf.getvalue())
    return path
