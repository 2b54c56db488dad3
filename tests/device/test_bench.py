"""`edgekit bench` end to end on emulated devices: results, parity, resume and every failure mode."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.device.bench import BenchSpec, bench
from edgekit.device.emulator import Faults
from edgekit.device.results import read_cells
from edgekit.errors import AppNotInstalledError, UsageError
from tests.device.conftest import Lab

FAST = {"runs": 5, "warmup": 1, "parity_samples": 4}


def _spec(target: Path, out: Path, **kw: Any) -> BenchSpec:
    return BenchSpec(target=target, out_dir=out, **{"device": "emu-1", **FAST, "threads": (1,), **kw})


def test_bench_on_emulator_records_everything(lab: Lab, tiny_export: Path, tmp_path: Path) -> None:
    _, adb = lab.start(lab.device())
    report = bench(_spec(tiny_export, tmp_path, accelerators=("cpu", "gpu")), adb=adb)
    assert report.ok and report.all_within and not report.gone
    assert len(report.cells) == 3 * 2  # three variants x two accelerators
    for c in report.cells:
        assert c["status"] == "ok" and c["emulated"] and c["device_model"] == "Pixel 9"
        assert c["latency"]["count"] == 5 and 0 < c["latency"]["p50"] <= c["latency"]["p90"]
        assert c["peak_ram_mb"] > 10 and c["ram_budget_mb"] == 1024 and c["budget_ok"]
        assert c["parity_vs_host"]["passed"] and c["parity_vs_host"]["max_abs_diff"] == 0.0
        assert c["parity_vs_torch"] is not None and c["parity_ok"] is c["parity_vs_torch"]["passed"]
        assert c["environment"]["thermal_before"] == 0 and c["environment"]["governors"]
        assert c["host_cpu"]["model"] and isinstance(c["host_cpu"]["isa"], list)
    gpu = [c for c in report.cells if c["accelerator"] == "gpu"]
    assert all(c["accelerator_used"] == "cpu" and "no GPU" in c["fallback_reason"] for c in gpu)
    fp32 = next(c for c in report.cells if c["variant"] == "tflite_fp32")
    assert fp32["parity_vs_torch"]["max_abs_diff"] < 1e-4
    lines = (tmp_path / "bench.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["timings_ms"]
    rows = list(csv.DictReader((tmp_path / "model_benchmark_emu-1.csv").open()))
    assert len(rows) == 6 and rows[0]["emulated"] == "True" and float(rows[0]["infer_p50_ms"]) > 0


def test_resume_skips_finished_cells(lab: Lab, tiny_export: Path, tmp_path: Path) -> None:
    _, adb = lab.start(lab.device())
    spec = _spec(tiny_export, tmp_path, variants=("tflite_int8",), threads=(1, 2), resume=True)
    first = bench(spec, adb=adb)
    assert len(first.cells) == 2 and first.skipped == 0
    second = bench(spec, adb=adb)
    assert second.cells == [] and second.skipped == 2
    assert len(read_cells(tmp_path)) == 2


def test_app_crash_is_recorded_and_the_matrix_goes_on(lab: Lab, tiny_export: Path, tmp_path: Path) -> None:
    _, adb = lab.start(lab.device(faults=Faults(crash_runs={0})))
    report = bench(_spec(tiny_export, tmp_path, variants=("tflite_fp32", "tflite_int8")), adb=adb)
    statuses = [c["status"] for c in report.cells]
    assert statuses == ["error", "ok"]
    assert "crashed" in report.cells[0]["error"] and not report.ok


def test_timeout_is_recorded(lab: Lab, tiny_export: Path, tmp_path: Path) -> None:
    dev = lab.device(faults=Faults(hang_runs={0: 30.0}))
    _, adb = lab.start(dev)
    report = bench(_spec(tiny_export, tmp_path, variants=("tflite_fp32",), timeout=3.0), adb=adb)
    assert report.cells[0]["status"] == "error" and "timed out" in report.cells[0]["error"]
    assert not dev._procs  # the host force-stopped the hung app


def test_push_failure_and_full_disk(lab: Lab, tiny_export: Path, tmp_path: Path) -> None:
    _, adb = lab.start(lab.device(faults=Faults(disk_limit_bytes=1000)))
    report = bench(_spec(tiny_export, tmp_path, variants=("tflite_fp32",)), adb=adb)
    assert report.cells[0]["status"] == "error" and "free space" in report.cells[0]["error"]


def test_unplug_mid_matrix_then_resume(lab: Lab, tiny_export: Path, tmp_path: Path) -> None:
    _, adb = lab.start(lab.device(faults=Faults(unplug_after_runs=1)))
    spec = _spec(tiny_export, tmp_path, resume=True)
    report = bench(spec, adb=adb)
    assert "emu-1" in report.gone and "--resume" in report.gone["emu-1"]
    assert report.pending >= 2 and len(read_cells(tmp_path)) == len(
        [c for c in report.cells if c["status"] == "ok"]
    )
    _, adb2 = lab.start(lab.device())  # plugged back in
    again = bench(spec, adb=adb2)
    assert again.ok and again.skipped == len(read_cells(tmp_path)) - len(again.cells)
    assert {c["variant"] for c in read_cells(tmp_path) if c["status"] == "ok"} == {
        "tflite_fp32", "tflite_int8", "tflite_int8_io",
    }  # fmt: skip


def test_activity_fallback_without_instrumentation(lab: Lab, tiny_export: Path, tmp_path: Path) -> None:
    _, adb = lab.start(lab.device(faults=Faults(no_instrumentation=True)))
    report = bench(_spec(tiny_export, tmp_path, variants=("tflite_int8_io",)), adb=adb)
    assert report.ok and report.cells[0]["parity_ok"]


def test_app_missing_or_outdated(lab: Lab, tiny_export: Path, tmp_path: Path) -> None:
    _, adb = lab.start(lab.device(app_version=None), lab.device("old", app_version="0.0.9"))
    with pytest.raises(AppNotInstalledError, match="not installed.*--apk"):
        bench(_spec(tiny_export, tmp_path), adb=adb)
    with pytest.raises(AppNotInstalledError, match="0.0.9 is installed"):
        bench(_spec(tiny_export, tmp_path, device="old"), adb=adb)
    apk = tmp_path / "app.apk"
    apk.write_bytes(b"PK\x03\x04 fake apk")
    report = bench(_spec(tiny_export, tmp_path, device="old", apk=apk, variants=("tflite_fp32",)), adb=adb)
    assert report.ok


def test_bench_a_bare_tflite(lab: Lab, tiny_export: Path, tmp_path: Path) -> None:
    _, adb = lab.start(lab.device())
    report = bench(_spec(tiny_export / "tiny.int8.tflite", tmp_path), adb=adb)
    c = report.cells[0]
    assert c["variant"] == "tflite" and c["parity_vs_torch"] is None and c["parity_ok"]


def test_bad_targets(tmp_path: Path) -> None:
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a model")
    with pytest.raises(UsageError, match="not a loadable"):
        bench(_spec(bad, tmp_path / "o"))
    with pytest.raises(UsageError, match="no manifest"):
        bench(_spec(tmp_path, tmp_path / "o"))
    with pytest.raises(UsageError, match="--accelerator"):
        _spec(tmp_path, tmp_path, accelerators=("tpu",))


def test_cli_bench_and_devices_on_the_builtin_emulator(tiny_export: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["devices", "--emulator", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["model"] == "Pixel 9"
    out = tmp_path / "b"
    args = ["bench", str(tiny_export), "--device", "emulator", "--runs", "3", "--warmup", "0", "--threads", "1",
            "--variants", "tflite_int8", "-o", str(out), "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    cells = json.loads(result.stdout)
    assert cells[0]["emulated"] and "timings_ms" not in cells[0]
    again = runner.invoke(app, [*args[:-1], "--resume"])
    assert again.exit_code == 0 and "1 finished cells skipped" in again.output


def test_cells_are_spread_over_several_devices(lab: Lab, tiny_export: Path, tmp_path: Path) -> None:
    _, adb = lab.start(lab.device("a"), lab.device("b"))
    report = bench(_spec(tiny_export, tmp_path, device="a,b", threads=(1, 2)), adb=adb)
    assert report.ok and len(report.cells) == 6
    assert {c["device"] for c in report.cells} == {"a", "b"}  # both phones took work
    assert (tmp_path / "model_benchmark_a.csv").exists() and (tmp_path / "model_benchmark_b.csv").exists()


def test_cooldown_waits_for_thermal_status_zero(lab: Lab, tiny_export: Path, tmp_path: Path) -> None:
    dev = lab.device(faults=Faults(thermal=[0, 2, 1, 0]))  # info() reads the first status
    _, adb = lab.start(dev)
    report = bench(_spec(tiny_export, tmp_path, variants=("tflite_fp32",), cooldown=5.0), adb=adb)
    assert report.cells[0]["environment"]["thermal_before"] == 0
    assert dev.faults.thermal == [0]  # every hot reading was consumed while waiting


def test_bench_runs_every_pinned_parity_input_by_default(lab: Lab, image_dir: Path, tmp_path: Path) -> None:
    from edgekit.exporting import export
    from edgekit.spec import ExportSpec, ModelSource
    from tests.conftest import TINY_ARCH

    out = tmp_path / "export"
    export(ExportSpec(source=ModelSource(arch=TINY_ARCH), out_dir=out, input_shape=(1, 3, 32, 32),
                      calib_dir=image_dir, calib_samples=16, parity_samples=24, name="tiny"))  # fmt: skip
    _, adb = lab.start(lab.device())
    report = bench(
        BenchSpec(target=out, out_dir=tmp_path / "b", device="emu-1", runs=2, warmup=0, threads=(1,)), adb=adb
    )
    assert report.ok, report.cells
    assert report.cells[0]["parity_vs_host"]["samples"] == 24  # more than any fixed output bound


def test_litert_onnxruntime_and_executorch_side_by_side(lab: Lab, image_dir: Path, tmp_path: Path) -> None:
    """One export, three runtimes: each gets its engine in config.json, runs in the emulated app
    with its own runtime, and is judged against the host run of the same file and PyTorch."""
    pytest.importorskip("executorch", reason="the executorch extra (CI installs it)")
    from edgekit.exporting import export
    from edgekit.spec import ExportSpec, ModelSource
    from tests.conftest import TINY_ARCH

    out = tmp_path / "x"
    export(ExportSpec(source=ModelSource(arch=TINY_ARCH), out_dir=out, input_shape=(1, 3, 32, 32),
                      variants=("tflite_fp32", "onnx_fp32", "executorch_fp32", "executorch_int8"),
                      calib_dir=image_dir, calib_samples=16, parity_samples=8))  # fmt: skip
    _, adb = lab.start(lab.device())
    report = bench(_spec(out, tmp_path / "b", profile=True), adb=adb)
    by_variant = {c["variant"]: c for c in report.cells}
    # where each runtime put the ops, from its own account: LiteRT's graph after delegation, ONNX
    # Runtime's profile (pulled into profiles/ as asked); ExecuTorch says why it has no profile here
    lite, onnx = by_variant["tflite_fp32"], by_variant["onnx_fp32"]
    assert lite["placement"]["source"] == "tflite_graph" and lite["accelerated_fraction"] == 1.0
    assert lite["placement"]["ops"]["TfLiteXNNPackDelegate"] == lite["placement"]["total_ops"] > 5
    assert "no per-op profiler" in lite["profile_note"] and "profile_file" not in lite
    ops = onnx["placement"]["ops"]
    assert onnx["placement"]["source"] == "ort_profile" and ops == {
        "CPUExecutionProvider": onnx["placement"]["total_ops"]
    }
    assert (
        onnx["accelerated_fraction"] == 0.0
    )  # the host's onnxruntime has no XNNPACK provider: said, not hidden
    assert "Conv" in onnx["placement"]["op_times_ms"]
    events = json.loads((tmp_path / "b" / onnx["profile_file"]).read_text())
    assert any(e.get("args", {}).get("provider") == "CPUExecutionProvider" for e in events)
    assert "ETDump" in by_variant["executorch_int8"]["profile_note"]
    assert {c["runtime"] for c in report.cells} == {"litert", "onnxruntime", "executorch"}
    assert by_variant["onnx_fp32"]["engine"] == "onnxruntime"
    assert by_variant["executorch_int8"]["engine"] == "executorch"
    for c in report.cells:
        assert c["status"] == "ok", c
        assert c["parity_vs_host"]["passed"] and c["parity_vs_host"]["max_abs_diff"] == 0.0, c["variant"]
        assert c["parity_vs_torch"]["passed"] and c["latency"]["p50"] > 0
    rows = list(csv.DictReader((tmp_path / "b" / "model_benchmark_emu-1.csv").open()))
    assert sorted(r["runtime"] for r in rows) == ["executorch", "executorch", "litert", "onnxruntime"]


def test_copies_are_outside_the_timed_region_and_a_swapped_model_is_refused(tmp_path: Path) -> None:
    """The emulated app times inference alone (copies reported apart) and checks the model's
    size and sha256 against config.json before loading, as the Java core does."""
    import numpy as np
    import torch

    from edgekit._io import sha256_bytes
    from edgekit.device.emulator.app import run
    from edgekit.device.protocol import RunConfig, TensorFile, encode_tensor
    from tests.models import build_tiny

    ep = torch.export.export(build_tiny().eval(), (torch.zeros(1, 3, 32, 32),))
    from edgekit.exporters.registry import ExportContext
    from edgekit.exporters.tflite import export_fp32
    from edgekit.spec import InputSpec

    data = export_fp32(ExportContext(ep.module(), InputSpec(shape=(1, 3, 32, 32)), None))
    run_dir = tmp_path / "run-1"
    run_dir.mkdir()
    (run_dir / "model.tflite").write_bytes(data)
    x = np.zeros((1, 3, 32, 32), np.float32)
    (run_dir / "input_000.bin").write_bytes(encode_tensor(x, "float32"))
    cfg = RunConfig("run-1", "model.tflite", sha256_bytes(data), len(data),
                    (TensorFile("input_000.bin", "float32", (1, 3, 32, 32)),), "cpu", 1, 1, 5)  # fmt: skip
    (run_dir / "config.json").write_text(cfg.to_json())
    (tmp_path / "out").mkdir()
    (tmp_path / "out2").mkdir()
    result = run(run_dir, tmp_path / "out", {})
    assert result.status == "ok" and len(result.timings_ms) == 5
    assert result.copy_in_ms is not None and result.copy_out_ms is not None and result.copy_in_ms >= 0
    (run_dir / "model.tflite").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit, same size
    tampered = run(run_dir, tmp_path / "out2", {})
    assert tampered.status == "error" and tampered.error_kind == "model_checksum"
    assert "sha256" in (tampered.error_message or "")


def test_an_accelerator_the_runtime_gave_no_op_is_recorded_as_a_cpu_run() -> None:
    """Whatever the app calls it, a GPU that took 0 ops is a CPU run (the host checks too)."""
    from edgekit.device.bench import _accelerator_truth
    from edgekit.device.placement import Placement
    from edgekit.device.protocol import RunResult

    def result(ops: dict[str, int]) -> RunResult:
        placement = Placement("tflite_log", 40, ops)
        return RunResult("r", "ok", "1", "compiled_model", "gpu", "gpu", ("cpu", "gpu"), 4,
                         timings_ms=(1.0,), placement=placement)  # fmt: skip

    used, why, share = _accelerator_truth("gpu", result({"TfLiteXNNPackDelegate": 40, "builtin": 0}))
    assert (used, share) == ("cpu", 0.0) and why.startswith("GPU took 0 of 40 ops")
    used, why, share = _accelerator_truth("gpu", result({"TfLiteGpuDelegateV2": 30, "builtin": 10}))
    assert (used, why, share) == ("gpu", None, 0.75)


def test_a_progress_display_that_fails_never_ends_the_run_in_a_thread(
    lab: Lab, tiny_export: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A device message with markup once killed the worker thread through the progress display
    (its traceback reached stderr); the cells are recorded whatever the display does."""
    _, adb = lab.start(lab.device(faults=Faults(crash_runs={0})))

    def display(message: str) -> None:
        if "tflite_" in message:  # the cells' lines, printed from the worker threads
            raise ValueError(f"cannot show {message}")

    report = bench(_spec(tiny_export, tmp_path, variants=("tflite_fp32", "tflite_int8")), display, adb=adb)
    assert [c["status"] for c in report.cells] == ["error", "ok"]
    assert "Traceback" not in capfd.readouterr().err


def test_markup_and_escapes_in_messages_are_shown_not_obeyed() -> None:
    from rich.console import Console
    from rich.errors import MarkupError
    from rich.spinner import Spinner

    from edgekit.cli._ui import plain, visible

    hostile = "model [/bold] crashed \x1b[2J\x1b]0;owned\x07"
    with pytest.raises(MarkupError):  # what rich's status spinner does with a str
        Spinner("dots", text=hostile)
    console = Console(record=True, width=200)
    console.print(Spinner("dots", text=plain(hostile)))
    shown = console.export_text()
    assert "[/bold]" in shown and "\x1b" not in shown and "\\x1b[2J" in shown
    assert visible("a\tb\nc\x7f") == "a\tb\nc\\x7f"
