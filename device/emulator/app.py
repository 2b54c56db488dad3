"""The benchmark app's contract, carried out on the host (the emulated device's "app process").

Run as ``python -m edgekit.device.emulator.app RUN_DIR RESULT_DIR``: reads
``config.json`` from RUN_DIR, loads the model with ai-edge-litert (XNNPACK),
saves the first inference of every input for parity, warms up, times the runs,
and writes raw outputs and ``result.json`` (atomically) to RESULT_DIR. It mirrors
the Java core's BenchmarkLoop; only the engine and memory probe differ.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from edgekit._io import atomic_write_bytes, atomic_write_text
from edgekit.device.protocol import (
    APP_VERSION,
    DTYPES,
    Memory,
    RunConfig,
    RunResult,
    TensorFile,
    decode_tensor,
    encode_tensor,
)
from edgekit.errors import ProtocolError


def read_proc_status() -> Memory:
    """VmRSS and VmHWM of this process from /proc/self/status (KiB)."""
    fields: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(rest.split()[0])
    return Memory(vm_rss_kb=fields.get("VmRSS", 0), vm_hwm_kb=fields.get("VmHWM", 0))


def _error(
    config: RunConfig | None, run_id: str, kind: str, message: str, device: dict[str, str]
) -> RunResult:
    return RunResult(
        run_id=run_id,
        status="error",
        app_version=APP_VERSION,
        engine=config.engine if config else "compiled_model",
        accelerator_requested=config.accelerator if config else "cpu",
        accelerator_used=None,
        available_accelerators=("cpu",),
        threads=config.threads if config else 0,
        error_kind=kind,
        error_message=message,
        device=device,
        emulated=True,
    )


def run(run_dir: Path, result_dir: Path, device: dict[str, str]) -> RunResult:
    """Carry out one run; never raises for bad input, it reports it in the result."""
    config: RunConfig | None = None
    run_id = run_dir.name
    memory = {"before_load": read_proc_status()}
    try:
        config = RunConfig.from_json((run_dir / "config.json").read_text(encoding="utf-8"))
        inputs = [decode_tensor((run_dir / t.file).read_bytes(), t) for t in config.inputs]
    except (OSError, ProtocolError) as exc:
        return _error(config, run_id, "bad_config", str(exc), device)
    from ai_edge_litert.interpreter import Interpreter

    start = time.perf_counter()
    try:
        interp = Interpreter(model_path=str(run_dir / config.model), num_threads=config.threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        return _error(config, run_id, "model_load", str(exc).splitlines()[0][:300], device)
    load_ms = (time.perf_counter() - start) * 1e3
    memory["after_load"] = read_proc_status()
    inp = interp.get_input_details()[0]
    outs = interp.get_output_details()
    expected = (tuple(int(d) for d in inp["shape"]), str(np.dtype(inp["dtype"])))
    for t in config.inputs:
        if (t.shape, t.dtype) != expected:
            return _error(
                config,
                run_id,
                "input_mismatch",
                f"{t.file} is {t.dtype} {list(t.shape)}, model wants {expected[1]} {list(expected[0])}",
                device,
            )

    def infer(x: np.ndarray) -> list[np.ndarray]:
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        return [interp.get_tensor(o["index"]).copy() for o in outs]

    out_files: list[TensorFile] = []
    first_ms = 0.0
    for k, x in enumerate(inputs):
        s = time.perf_counter()
        ys = infer(x)
        if k == 0:
            first_ms = (time.perf_counter() - s) * 1e3
        for j, y in enumerate(ys):
            dtype = next(name for name, code in DTYPES.items() if np.dtype(code) == y.dtype.newbyteorder("<"))
            spec = TensorFile(f"out_{k:03d}_{j}.bin", dtype, tuple(int(d) for d in y.shape))
            atomic_write_bytes(result_dir / spec.file, encode_tensor(y, dtype))
            out_files.append(spec)
    for _ in range(config.warmup):
        infer(inputs[0])
    timings: list[float] = []
    for _ in range(config.runs):
        s = time.perf_counter()
        infer(inputs[0])
        timings.append((time.perf_counter() - s) * 1e3)
    memory["after_runs"] = read_proc_status()
    fallback = None
    if config.accelerator != "cpu":
        fallback = f"the emulated device has no {config.accelerator.upper()} delegate; ran on CPU (XNNPACK)"
    return RunResult(
        run_id=config.run_id,
        status="ok",
        app_version=APP_VERSION,
        engine="interpreter",
        accelerator_requested=config.accelerator,
        accelerator_used="cpu",
        available_accelerators=("cpu",),
        threads=config.threads,
        load_ms=round(load_ms, 4),
        first_inference_ms=round(first_ms, 4),
        timings_ms=tuple(round(t, 5) for t in timings),
        outputs=tuple(out_files),
        memory=memory,
        fallback_reason=fallback,
        device=device,
        emulated=True,
    )


def main() -> None:
    """Entry point of the emulated app process."""
    run_dir, result_dir = Path(sys.argv[1]), Path(sys.argv[2])
    device = dict(kv.split("=", 1) for kv in sys.argv[3:])
    result_dir.mkdir(parents=True, exist_ok=True)
    if os.environ.get("EDGEKIT_EMULATOR_CRASH") == "1":  # injected fault: the process dies mid-run
        os._exit(134)
    if os.environ.get("EDGEKIT_EMULATOR_HANG"):
        time.sleep(float(os.environ["EDGEKIT_EMULATOR_HANG"]))
    result = run(run_dir, result_dir, device)
    atomic_write_text(result_dir / "result.json", result.to_json())


if __name__ == "__main__":
    main()
