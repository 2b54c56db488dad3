"""The benchmark app's contract, carried out on the host (the emulated device's "app process").

Runs in the arm64 Python under qemu-aarch64 (``--device emulator``: the phone's kernels) or in
the host's Python (``--device emulator-x86``). Its times and memory are the emulator's or the
host's, never a phone's; ``emulation=...`` among the device facts says which.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._io import atomic_write_bytes, atomic_write_text
from edgekit.device.placement import Placement, from_ort_profile, from_tflite_graph
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


class PeakSampler:
    """The largest VmRSS and VmHWM seen by a thread sampling every 10 ms until :meth:`close`."""

    def __init__(self, interval: float = 0.01) -> None:
        import threading

        self._peak = read_proc_status()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        m = read_proc_status()
        self._peak = Memory(vm_rss_kb=max(self._peak.vm_rss_kb, m.vm_rss_kb),
                            vm_hwm_kb=max(self._peak.vm_hwm_kb, m.vm_hwm_kb))  # fmt: skip

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._sample()

    def close(self) -> Memory:
        """Stop sampling (one last sample) and return the peaks."""
        self._stop.set()
        self._thread.join()
        self._sample()
        return self._peak


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


Infer = Callable[[np.ndarray], list[np.ndarray]]


class Steps:
    """An engine split as the app splits it: copy in, inference (the timed part), copy out."""

    def __init__(self, write: Callable[[np.ndarray], None], invoke: Callable[[], None],
                 read: Callable[[], list[np.ndarray]]) -> None:  # fmt: skip
        self.write, self.invoke, self.read = write, invoke, read
        #: where the runtime put the ops (asked after the timed runs), and a per-op profile writer
        #: returning the file it wrote into a folder; both raise ValueError with the reason
        self.placement: Callable[[np.ndarray], Placement | None] = lambda x: None
        self.profile: Callable[[Path], str] = _no_profiler

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        self.write(x)
        self.invoke()
        return self.read()


def _no_profiler(folder: Path) -> str:
    raise ValueError("this engine has no per-op profiler the app can call (LiteRT's Kotlin and Python APIs "
                     "expose none; benchmark_model --enable_op_profiling has one)")  # fmt: skip


_CPU = {
    "compiled_model": "XNNPACK",
    "interpreter": "XNNPACK",
    "onnxruntime": "ONNX Runtime's CPU provider",
    "executorch": "XNNPACK",
}


def _load(config: RunConfig, path: Path) -> tuple[Steps, tuple[tuple[int, ...], str]]:
    """The engine's inference function and the (shape, dtype) its input wants.

    The engines of the app, run on the host: LiteRT (XNNPACK) for ``.tflite``, ONNX Runtime's
    CPU provider for ``.onnx`` (the app adds XNNPACK/NNAPI providers where the phone has them),
    the ExecuTorch runtime for ``.pte`` (XNNPACK-delegated parts run on XNNPACK).
    """
    if config.engine == "onnxruntime":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = config.threads, 1, 3
        try:
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ValueError(f"not a loadable ONNX model ({type(exc).__name__}: {exc})") from exc
        inp, names = sess.get_inputs()[0], [o.name for o in sess.get_outputs()]
        dtype = "float16" if inp.type == "tensor(float16)" else "float32"

        io = sess.io_binding()
        state: dict[str, list[np.ndarray]] = {}

        def write_ort(x: np.ndarray) -> None:
            io.bind_cpu_input(inp.name, x)
            for n in names:
                io.bind_output(n)

        def invoke_ort() -> None:
            sess.run_with_iobinding(io)

        def read_ort() -> list[np.ndarray]:
            state["out"] = [np.array(y) for y in io.copy_outputs_to_cpu()]
            return state["out"]

        steps = Steps(write_ort, invoke_ort, read_ort)
        profiled: dict[str, bytes] = {}

        def placement_ort(x: np.ndarray) -> Placement:
            # a second session with ONNX Runtime's profiler, after the timed runs (profiling slows
            # every run it is on): its node events name the provider that ran each node
            prof = ort.SessionOptions()
            prof.intra_op_num_threads, prof.inter_op_num_threads, prof.log_severity_level = (
                config.threads,
                1,
                3,
            )
            prof.enable_profiling = True
            prof.profile_file_prefix = str(path.parent / ".edgekit_ort_profile")
            s2 = ort.InferenceSession(str(path), prof, providers=["CPUExecutionProvider"])
            s2.run(None, {inp.name: x})
            written = Path(s2.end_profiling())
            try:
                profiled["json"] = written.read_bytes()
            finally:
                written.unlink(missing_ok=True)
            return from_ort_profile(profiled["json"].decode("utf-8", "replace"))

        def profile_ort(folder: Path) -> str:
            if "json" not in profiled:
                raise ValueError("no ONNX Runtime profile was recorded")
            atomic_write_bytes(folder / "profile.ort.json", profiled["json"])
            return "profile.ort.json"

        steps.placement, steps.profile = placement_ort, profile_ort
        return steps, (tuple(int(d) for d in inp.shape), dtype)
    if config.engine == "executorch":
        try:
            import torch
            from executorch.runtime import Runtime
        except ImportError:  # the arm64 environment has no ExecuTorch runtime (it needs torch)
            raise ValueError(
                f"no ExecuTorch runtime in this emulated device's Python ({os.uname().machine})"
            ) from None

        try:
            method = Runtime.get().load_program(str(path)).load_method("forward")
        except Exception as exc:  # the runtime raises RuntimeError or its own types
            raise ValueError(f"not a loadable ExecuTorch program ({type(exc).__name__}: {exc})") from exc
        shape = tuple(int(d) for d in method.metadata.input_tensor_meta(0).sizes())

        held: dict[str, Any] = {}

        def write_et(x: np.ndarray) -> None:
            held["in"] = torch.from_numpy(x.copy())

        def invoke_et() -> None:
            held["out"] = method.execute([held["in"]])

        def read_et() -> list[np.ndarray]:
            return [y.detach().numpy().copy() for y in held["out"]]

        steps = Steps(write_et, invoke_et, read_et)

        def no_etdump(folder: Path) -> str:
            raise ValueError("the emulated device's ExecuTorch runtime records no ETDump (the phone's "
                             "Module.etdump does, when executorch-android was built with the event tracer)")  # fmt: skip

        steps.profile = no_etdump
        return steps, (shape, "float32")
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=config.threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    outs = interp.get_output_details()

    def write_litert(x: np.ndarray) -> None:
        interp.set_tensor(inp["index"], x)

    def read_litert() -> list[np.ndarray]:
        return [interp.get_tensor(o["index"]).copy() for o in outs]

    steps = Steps(write_litert, interp.invoke, read_litert)

    def placement_litert(x: np.ndarray) -> Placement:
        # LiteRT's Linux build keeps its delegation line at VERBOSE (silent): read the graph after
        # delegation instead (a private accessor of ai-edge-litert; the phone reads logcat)
        try:
            nodes = interp._get_ops_details()
        except AttributeError as exc:
            raise ValueError(f"this ai-edge-litert has no node list ({exc})") from None
        return from_tflite_graph(nodes)

    steps.placement = placement_litert
    return steps, (
        tuple(int(d) for d in inp["shape"]),
        str(np.dtype(inp["dtype"])),
    )


def _model_problem(path: Path, config: RunConfig) -> str | None:
    """Why the model file is not the one config.json names (size, then sha256), or None."""
    import hashlib

    try:
        size = path.stat().st_size
        if size != config.model_size:
            return f"{config.model} is {size} bytes, config.json says {config.model_size}"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"cannot read {config.model}: {exc.strerror}"
    if digest != config.model_sha256:
        return f"{config.model} has sha256 {digest}, config.json says {config.model_sha256}"
    return None


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
    problem = _model_problem(run_dir / config.model, config)
    if problem:
        return _error(config, run_id, "model_checksum", problem, device)
    memory["after_inspect"] = read_proc_status()  # as the app: the load's baseline (nothing to inspect here)
    start = time.perf_counter()
    try:
        infer, expected = _load(config, run_dir / config.model)
    except (ValueError, RuntimeError, OSError) as exc:
        return _error(config, run_id, "model_load", str(exc).splitlines()[0][:300], device)
    load_ms = (time.perf_counter() - start) * 1e3
    memory["after_load"] = read_proc_status()
    for t in config.inputs:
        if (t.shape, t.dtype) != expected:
            return _error(
                config,
                run_id,
                "input_mismatch",
                f"{t.file} is {t.dtype} {list(t.shape)}, model wants {expected[1]} {list(expected[0])}",
                device,
            )

    out_files: list[TensorFile] = []
    first_ms = 0.0
    sampler = PeakSampler()  # as the app's: from the first inference to the last timed run
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
    copy_in: list[float] = []
    copy_out: list[float] = []
    for _ in range(config.runs):  # inference alone is timed, as the app does; copies apart
        started = time.perf_counter()
        infer.write(inputs[0])
        written = time.perf_counter()
        infer.invoke()
        invoked = time.perf_counter()
        infer.read()
        copy_in.append((written - started) * 1e3)
        timings.append((invoked - written) * 1e3)
        copy_out.append((time.perf_counter() - invoked) * 1e3)
    memory["peak_sampled"] = sampler.close()
    memory["after_runs"] = read_proc_status()
    fallback = None
    if config.accelerator != "cpu":
        fallback = f"the emulated device has no {config.accelerator.upper()} delegate; ran on CPU ({_CPU[config.engine]})"
    notes: list[str] = []
    placement = profile_file = None
    try:
        placement = infer.placement(inputs[0])
    except (ValueError, RuntimeError, OSError) as exc:
        notes.append(f"placement: {str(exc).splitlines()[0][:300]}")
    if config.profile:
        try:
            profile_file = infer.profile(result_dir)
        except (ValueError, RuntimeError, OSError) as exc:
            notes.append(f"profile: {str(exc).splitlines()[0][:300]}")
    return RunResult(
        run_id=config.run_id,
        status="ok",
        app_version=APP_VERSION,
        engine="interpreter" if config.engine in ("compiled_model", "interpreter") else config.engine,
        accelerator_requested=config.accelerator,
        accelerator_used="cpu",
        available_accelerators=("cpu",),
        threads=config.threads,
        load_ms=round(load_ms, 4),
        first_inference_ms=round(first_ms, 4),
        timings_ms=tuple(round(t, 5) for t in timings),
        copy_in_ms=round(float(np.median(copy_in)), 5),
        copy_out_ms=round(float(np.median(copy_out)), 5),
        outputs=tuple(out_files),
        memory=memory,
        fallback_reason=fallback,
        device=device,
        emulated=True,
        placement=placement,
        profile_file=profile_file,
        profile_note="; ".join(notes) or None,
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
