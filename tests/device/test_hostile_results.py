"""A hostile or broken app: every malformed result.json becomes the cell's error, never a dead worker.

Each case replaces the emulated app's result.json; the bench must record the cell as an
error (one line), keep going, and report ``ok`` false. Before this, a result that failed
validation raised in the worker thread and the cell was lost while bench exited 0.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from edgekit.device.bench import BenchSpec, bench
from edgekit.device.emulator import Faults
from edgekit.device.results import JSONL, append_cell, read_cells
from tests.device.conftest import Lab

FAST = {"runs": 3, "warmup": 0, "parity_samples": 2, "threads": (1,), "device": "emu-1"}


def _edit(change: Any) -> Any:
    def edit(text: str) -> str:
        d = json.loads(text)
        change(d)
        return json.dumps(d)

    return edit


def _set(key: str, value: Any) -> Any:
    return _edit(lambda d: d.__setitem__(key, value))


def _drop(key: str) -> Any:
    return _edit(lambda d: d.pop(key))


CASES: dict[str, Any] = {
    "invalid JSON": "{not json",
    "empty file": "",
    "a JSON list": "[1, 2]",
    "other schema version": _set("schema_version", 99),
    "missing field": _drop("run_id"),
    "timings as a string": _set("timings_ms", "fast"),
    "negative timing": _set("timings_ms", [1.0, -2.0]),
    "NaN timing": lambda t: t.replace('"timings_ms": [', '"timings_ms": [NaN, '),
    "Infinity load time": _set("load_ms", math.inf),
    "memory as a list": _set("memory", [1, 2]),
    "memory figure as text": _edit(lambda d: d["memory"]["after_runs"].__setitem__("vm_rss_kb", "lots")),
    "huge output shape": _edit(lambda d: d["outputs"][0].__setitem__("shape", [1, 10**15])),
    "float output shape": _edit(lambda d: d["outputs"][0].__setitem__("shape", [1, 1e15])),
    "4000 outputs": _edit(lambda d: d.__setitem__("outputs", d["outputs"] * 4000)),
    "output dtype unknown": _edit(lambda d: d["outputs"][0].__setitem__("dtype", "complex64")),
    "output file outside": _edit(lambda d: d["outputs"][0].__setitem__("file", "../../etc/passwd")),
    "output size mismatch": _edit(lambda d: d["outputs"][0].__setitem__("shape", [1, 7])),
    "status unknown": _set("status", "great"),
    "threads as bool": _set("threads", True),
    "accelerators not names": _set("available_accelerators", [1, 2]),
    "device as a list": _set("device", ["x"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_malformed_result_is_the_cells_error(name: str, lab: Lab, tiny_export: Path, tmp_path: Path) -> None:
    _, adb = lab.start(lab.device(faults=Faults(result_json=CASES[name])))
    spec = BenchSpec(target=tiny_export, out_dir=tmp_path, variants=("tflite_fp32",), **FAST)  # type: ignore[arg-type]
    report = bench(spec, adb=adb)
    assert len(report.cells) == 1, name
    cell = report.cells[0]
    assert cell["status"] == "error" and cell["error"] and "\n" not in cell["error"], cell
    assert not report.ok
    assert read_cells(tmp_path)[0]["key"] == cell["key"]  # recorded on disk too


def test_an_unexpected_error_in_a_cell_is_recorded_and_the_matrix_goes_on(
    lab: Lab, tiny_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgekit.device import bench as bench_module

    real = bench_module.run_cell
    calls = []

    def flaky(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("boom")
        return real(*args, **kw)

    monkeypatch.setattr(bench_module, "run_cell", flaky)
    _, adb = lab.start(lab.device())
    spec = BenchSpec(target=tiny_export, out_dir=tmp_path, variants=("tflite_fp32", "tflite_int8"), **FAST)  # type: ignore[arg-type]
    report = bench(spec, adb=adb)
    assert [c["status"] for c in report.cells] == ["error", "ok"]
    assert report.cells[0]["error"] == "KeyError: 'boom'" and not report.ok


def test_torn_last_line_is_repaired_and_foreign_lines_are_skipped(tmp_path: Path) -> None:
    cell = {"key": "k1", "device": "d", "status": "ok", "variant": "v"}
    append_cell(tmp_path, cell)
    with open(tmp_path / JSONL, "a", encoding="utf-8") as fh:
        fh.write('{"key": "k2", "device": "d", "sta')  # a crash mid-write
    append_cell(tmp_path, {**cell, "key": "k3", "latency": {"p50": math.nan}})
    with open(tmp_path / JSONL, "a", encoding="utf-8") as fh:
        fh.write('[1, 2]\n"text"\n{"no": "key"}\n')
    cells = read_cells(tmp_path)
    assert [c["key"] for c in cells] == ["k1", "k3"]  # k3 is not glued onto the torn k2
    assert cells[1]["latency"]["p50"] is None  # no bare NaN in the log
    assert "NaN" not in (tmp_path / JSONL).read_text()


def test_resume_after_a_torn_line_runs_only_the_missing_cell(
    lab: Lab, tiny_export: Path, tmp_path: Path
) -> None:
    _, adb = lab.start(lab.device())
    spec = BenchSpec(target=tiny_export, out_dir=tmp_path, variants=("tflite_fp32", "tflite_int8"), **FAST)  # type: ignore[arg-type]
    first = bench(spec, adb=adb)
    assert first.ok and len(first.cells) == 2
    log = tmp_path / JSONL
    lines = log.read_text().splitlines(keepends=True)
    log.write_text(lines[0] + lines[1][: len(lines[1]) // 2])  # the second record torn
    again = bench(BenchSpec(target=tiny_export, out_dir=tmp_path, resume=True,
                            variants=("tflite_fp32", "tflite_int8"), **FAST), adb=adb)  # type: ignore[arg-type]  # fmt: skip
    assert [c["variant"] for c in again.cells] == ["tflite_int8"] and again.skipped == 1
    assert len(read_cells(tmp_path)) == 2
