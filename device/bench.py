"""`edgekit bench`: push each variant to a phone, run the benchmark app, pull and judge the results.

A matrix of cells (variant x accelerator x threads), spread over one worker per
device. Each finished cell is appended at once to ``bench.jsonl`` and the device's
CSV, so an unplugged phone loses nothing: ``--resume`` skips finished cells.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import posixpath
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._io import atomic_write_bytes, ensure_output_dir, sha256_bytes
from edgekit.device.adb import Adb, DeviceInfo, Phone
from edgekit.device.profiles import get_profile, profile_for_model
from edgekit.device.protocol import (
    ACTIVITY,
    APP_VERSION,
    DEVICE_ROOT,
    INSTRUMENTATION,
    PACKAGE,
    RESULTS_ROOT,
    RunConfig,
    RunResult,
    TensorFile,
    decode_tensor,
    encode_tensor,
)
from edgekit.device.results import append_cell, read_cells
from edgekit.device.stats import latency_stats
from edgekit.errors import (
    AppCrashError,
    AppNotInstalledError,
    DeviceError,
    DeviceGoneError,
    DeviceSelectionError,
    DeviceTimeoutError,
    EdgekitError,
    OutputError,
    ProtocolError,
    UsageError,
)
from edgekit.hostinfo import host_cpu
from edgekit.parity import compare
from edgekit.spec import DEFAULT_TOLERANCES, OutputSpec, Tolerance

#: Where `./gradlew :app:assembleRelease` puts the APK, relative to the repository root.
DEFAULT_APK = Path("android_app/app/build/outputs/apk/release/app-release.apk")
EMULATOR = "emulator"
#: the emulated Pixel 9 on the host's own kernels (fast; x86 numerics, not the phone's)
EMULATOR_X86 = "emulator-x86"
EMULATORS = (EMULATOR, EMULATOR_X86)

#: progress(message)
ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class BenchSpec:
    """Everything `edgekit bench` needs; built by the CLI."""

    target: Path
    out_dir: Path
    device: str | None = None
    adb: str | None = None
    accelerators: tuple[str, ...] = ("cpu",)
    threads: tuple[int, ...] | None = None
    runs: int = 50
    warmup: int = 10
    parity_samples: int | None = None  # None: every input the export pinned (16 for a bare .tflite)
    variants: tuple[str, ...] | None = None
    resume: bool = False
    apk: Path | None = None
    cooldown: float = 0.0
    timeout: float = 600.0
    engine: str = "compiled_model"
    gpu_precision: str = "fp32"
    #: a per-op profile of each cell after its timed runs (ONNX Runtime's profile, ExecuTorch's ETDump)
    profile: bool = False

    def __post_init__(self) -> None:
        if self.runs < 1 or self.warmup < 0 or (self.parity_samples is not None and self.parity_samples < 1):
            raise UsageError("--runs and --parity-samples must be >= 1 and --warmup >= 0")
        bad = [a for a in self.accelerators if a not in ("cpu", "gpu", "npu")]
        if bad or not self.accelerators:
            raise UsageError(
                f"--accelerator takes cpu, gpu, npu (comma-separated), got {','.join(self.accelerators)}"
            )
        if self.threads is not None and (not self.threads or min(self.threads) < 1):
            raise UsageError("--threads takes positive integers, e.g. 1,4")


#: exported formats the app can run, and the runtime each goes to
RUNTIMES = {"tflite": "litert", "onnx": "onnxruntime", "pte": "executorch"}


@dataclass(frozen=True)
class BenchModel:
    """One .tflite to bench with the inputs and references to judge it by."""

    name: str
    variant: str
    path: Path
    sha256: str
    precision: str
    parity_inputs: np.ndarray  # in the model's own input layout, float32
    torch_reference: np.ndarray | None
    output: OutputSpec
    threshold: float
    #: tflite, onnx or pte: which runtime the app runs it with
    format: str = "tflite"

    def engine(self, spec: BenchSpec) -> str:
        """The app engine for this file (LiteRT's is the --engine choice)."""
        return {"onnx": "onnxruntime", "pte": "executorch"}.get(self.format, spec.engine)


@dataclass(frozen=True)
class Cell:
    """One point of the matrix; whichever device is free runs it."""

    model: BenchModel
    accelerator: str
    threads: int

    def key(self, spec: BenchSpec, device_model: str) -> str:
        """Stable identity for --resume: the same cell on the same phone model is the same measurement."""
        parts = [device_model, self.model.sha256, self.accelerator, str(self.threads), str(spec.runs),
                 str(spec.warmup), self.model.engine(spec), spec.gpu_precision]  # fmt: skip
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@dataclass
class BenchReport:
    """What a bench run did: the cells it finished now, the ones it skipped, devices lost."""

    out_dir: Path
    cells: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    gone: dict[str, str] = field(default_factory=dict)
    pending: int = 0

    @property
    def ok(self) -> bool:
        """No device lost, no cell left unrun and no cell failed."""
        return not self.gone and not self.pending and all(c["status"] == "ok" for c in self.cells)

    @property
    def all_within(self) -> bool:
        """Every finished cell passed parity and the RAM budget."""
        return all(c["status"] == "ok" and c["parity_ok"] and c["budget_ok"] is not False for c in self.cells)


# -- models --------------------------------------------------------------------------------


def _load_models(spec: BenchSpec) -> list[BenchModel]:
    target = Path(spec.target)
    if target.is_file() and target.suffix == ".tflite":
        return [_bare_model(target, spec)]
    from edgekit.manifest import export_root, load_manifest, parity_arrays, verified_file

    manifest = load_manifest(target)
    root = export_root(target)
    x, ref = parity_arrays(root, manifest)
    x, ref = x[: spec.parity_samples], ref[: spec.parity_samples]
    output = manifest.output_spec()
    models = []
    for v in manifest.variants:
        if v.format not in RUNTIMES or v.status != "ok" or v.file is None:
            continue
        if spec.variants and v.name not in spec.variants:
            continue
        layout = v.input.get("layout", "nchw")
        inputs = x if layout == "nchw" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        path = verified_file(root, v)
        models.append(BenchModel(manifest.name, v.name, path, v.sha256 or "", v.precision, inputs, ref,
                                 output, manifest.threshold, v.format))  # fmt: skip
    if not models:
        raise UsageError(f"no TFLite, ONNX or ExecuTorch variant to bench in {target} (check --variants)")
    return models


def _bare_model(path: Path, spec: BenchSpec) -> BenchModel:
    from edgekit.runners.litert import LiteRTRunner

    try:
        runner = LiteRTRunner(path)
    except (ValueError, RuntimeError) as exc:
        raise UsageError(
            f"{path} is not a loadable .tflite ({str(exc).splitlines()[0]}); check the file"
        ) from exc
    shape, _ = runner.input_tensor
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((spec.parity_samples or 16, *shape[1:])).astype(np.float32)
    data = path.read_bytes()
    classes = int(np.prod(run_host(runner, inputs[:1]).shape[1:]))
    output = OutputSpec(classes=classes if classes in (1, 2) else 1)
    return BenchModel(path.stem, "tflite", path, sha256_bytes(data), "fp32", inputs, None, output, 0.5)


def run_host(runner: Any, inputs: np.ndarray) -> np.ndarray:
    """Host LiteRT outputs for each sample, as (N, k) float32."""
    from edgekit.runners import run_batch

    return run_batch(runner, inputs)


# -- the device side -------------------------------------------------------------------------


def ensure_app(phone: Phone, apk: Path | None) -> str:
    """Make sure the benchmark app of APP_VERSION is installed; returns what was done."""
    out = phone.shell(["dumpsys", "package", PACKAGE]).stdout
    m = re.search(r"versionName=(\S+)", out)
    if m and m.group(1) == APP_VERSION:
        return "installed"
    source = apk or (DEFAULT_APK if DEFAULT_APK.is_file() else None)
    if source is None or not Path(source).is_file():
        have = (
            f"version {m.group(1)} is installed, {APP_VERSION} is needed"
            if m
            else "the benchmark app is not installed"
        )
        raise AppNotInstalledError(
            f"{phone.serial}: {have}; build it with 'cd android_app && ./gradlew :app:assembleRelease' "
            "(Android SDK needed) and pass --apk PATH"
        )
    remote = f"{DEVICE_ROOT}/edgekit-bench.apk"
    phone.shell(["mkdir", "-p", DEVICE_ROOT])
    phone.push(Path(source).read_bytes(), remote)
    r = phone.shell(["pm", "install", "-r", "-t", remote], timeout=180)
    phone.shell(["rm", "-f", remote])
    if "Success" not in r.stdout:
        raise AppNotInstalledError(
            f"{phone.serial}: pm install failed: {(r.stdout + r.stderr).strip()[:200]}"
        )
    return f"installed from {source}"


def _instrument(phone: Phone, run_dir: str, run_id: str, timeout: float) -> str:
    """Run the app; returns the device path of result.json."""
    r = phone.shell(["am", "instrument", "-w", "-r", "-e", "run_dir", run_dir, "-e", "run_id", run_id,
                     INSTRUMENTATION], timeout=timeout)  # fmt: skip
    text = r.stdout + r.stderr
    m = re.search(r"INSTRUMENTATION_RESULT: result_path=(\S+)", text)
    if m:
        return m.group(1)
    if "Process crashed" in text or "shortMsg=" in text:
        log = phone.shell(["logcat", "-d", "-t", "50", "AndroidRuntime:E", "*:S"]).stdout.strip().splitlines()
        raise AppCrashError(f"{phone.serial}: the benchmark app crashed{': ' + log[-1][:200] if log else ''}")
    if "Unable to find instrumentation" in text:
        return _start_activity(phone, run_dir, run_id, timeout)
    raise DeviceError(f"{phone.serial}: instrumentation gave no result: {text.strip()[-200:]}")


def _start_activity(phone: Phone, run_dir: str, run_id: str, timeout: float) -> str:
    """Fallback without instrumentation: start the activity and poll for result.json."""
    r = phone.shell(
        ["am", "start", "-W", "-S", "-n", ACTIVITY, "--es", "run_dir", run_dir, "--es", "run_id", run_id]
    )
    if "Error" in r.stdout or r.code != 0:
        raise DeviceError(f"{phone.serial}: could not start the benchmark activity: {r.stdout.strip()[:200]}")
    result = f"{RESULTS_ROOT}/{run_id}/result.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if phone.exists(result):
            return result
        time.sleep(0.25)
    raise DeviceTimeoutError(f"{phone.serial}: no result.json after {timeout:.0f}s")


def _cooldown(phone: Phone, seconds: float) -> int | None:
    status = phone.thermal_status()
    deadline = time.monotonic() + seconds
    while seconds > 0 and status not in (None, 0) and time.monotonic() < deadline:
        time.sleep(min(5.0, seconds / 10))
        status = phone.thermal_status()
    return status


def run_cell(
    phone: Phone, info: DeviceInfo, cell: Cell, spec: BenchSpec, host_out: np.ndarray
) -> dict[str, Any]:
    """Push, run and pull one cell; returns its JSON record (raises DeviceError on failure)."""
    from edgekit.runners import open_runner

    model = cell.model
    run_id = f"{cell.key(spec, info.model)}-{int(time.time() * 1000) % 10**9}"
    run_dir = f"{DEVICE_ROOT}/{run_id}"
    result_dir = f"{RESULTS_ROOT}/{run_id}"
    runner = open_runner(model.format, model.path)
    shape, dtype = runner.input_tensor
    device_file = f"model.{model.format}"
    inputs = [TensorFile(f"input_{i:03d}.bin", dtype, shape) for i in range(len(model.parity_inputs))]
    data = model.path.read_bytes()
    config = RunConfig(run_id, device_file, sha256_bytes(data), len(data), tuple(inputs), cell.accelerator,
                       cell.threads, spec.warmup, spec.runs, model.engine(spec), spec.gpu_precision,
                       spec.profile)  # fmt: skip
    thermal_before = _cooldown(phone, spec.cooldown)
    phone.shell(["rm", "-rf", run_dir, result_dir])
    phone.shell(["mkdir", "-p", run_dir])
    try:
        pushes = [(data, f"{run_dir}/{device_file}")]
        pushes += [(encode_tensor(runner.quantize_input(x[None]), dtype), f"{run_dir}/{t.file}")
                   for t, x in zip(inputs, model.parity_inputs, strict=True)]  # fmt: skip
        pushes.append((config.to_json().encode(), f"{run_dir}/config.json"))
        phone.push_all(pushes)
        try:
            result_path = _instrument(phone, run_dir, run_id, spec.timeout)
        except (DeviceTimeoutError, AppCrashError):
            phone.shell(["am", "force-stop", PACKAGE])
            raise
        result = RunResult.from_json(phone.pull(result_path).decode("utf-8"))
        # The app reports its real external-files path (/storage/emulated/0/... on a phone).
        expected = len(cell.model.parity_inputs) * max(len(runner.output_quantization), 1)
        if len(result.outputs) > expected:
            raise ProtocolError(
                f"result.json lists {len(result.outputs)} output files for {len(cell.model.parity_inputs)} "
                f"inputs of a model with {len(runner.output_quantization)} output(s); expected at most {expected}"
            )
        pulled_from = posixpath.dirname(result_path)
        outputs = {t.file: decode_tensor(phone.pull(f"{pulled_from}/{t.file}"), t) for t in result.outputs}
        profile_file = _pull_profile(phone, spec, pulled_from, result, run_id)
    finally:
        with contextlib.suppress(DeviceError):  # a vanished device is reported by the step that failed
            phone.shell(["rm", "-rf", run_dir, result_dir])
    thermal_after = phone.thermal_status()
    record = _record(cell, spec, info, result, outputs, runner.output_quantization, host_out,
                     {"thermal_before": thermal_before, "thermal_after": thermal_after}, run_id)  # fmt: skip
    if profile_file:
        record["profile_file"] = profile_file
    return record


#: a per-op profile bigger than this is not pulled
MAX_PROFILE_BYTES = 64 << 20


def _pull_profile(
    phone: Phone, spec: BenchSpec, pulled_from: str, result: RunResult, run_id: str
) -> str | None:
    """Copy the app's per-op profile into OUT/profiles/; its path relative to OUT, or None."""
    if not spec.profile or not result.profile_file:
        return None
    data = phone.pull(f"{pulled_from}/{result.profile_file}")  # a plain name: checked by RunResult
    if len(data) > MAX_PROFILE_BYTES:
        raise ProtocolError(
            f"{result.profile_file} is {len(data)} bytes; at most {MAX_PROFILE_BYTES} are kept"
        )
    rel = f"profiles/{run_id}.{result.profile_file}"
    ensure_output_dir(spec.out_dir / "profiles")
    atomic_write_bytes(spec.out_dir / rel, data)
    return rel


def _device_outputs(
    result: RunResult, outputs: dict[str, np.ndarray], quant: list[Any], n: int
) -> np.ndarray:
    rows = []
    for k in range(n):
        name = f"out_{k:03d}_0.bin"
        if name not in outputs:
            raise DeviceError(f"the app wrote no {name}")
        y = outputs[name].astype(np.float32)
        if quant and quant[0] is not None:
            scale, zero = quant[0]
            y = (y - zero) * scale
        rows.append(y.reshape(-1))
    return np.stack(rows)


def _record(cell: Cell, spec: BenchSpec, info: DeviceInfo, result: RunResult, outputs: dict[str, np.ndarray],
            quant: list[Any], host_out: np.ndarray, env: dict[str, Any], run_id: str) -> dict[str, Any]:  # fmt: skip
    model = cell.model
    profile = get_profile(info.profile) if info.profile else profile_for_model(info.model)
    budget = profile.ram_budget_mb if profile else None
    base = _base_record(cell, spec, info, run_id)
    if result.status != "ok":
        return {**base, "status": "error", "error": f"{result.error_kind}: {result.error_message}"}
    dev = _device_outputs(result, outputs, quant, len(model.parity_inputs))
    tol = DEFAULT_TOLERANCES.get(model.precision, DEFAULT_TOLERANCES["int8"])
    used, fallback, share = _accelerator_truth(cell.accelerator, result)
    if cell.accelerator != "cpu" and used != "cpu":
        tol = (
            DEFAULT_TOLERANCES["fp16"] if model.precision == "fp32" and spec.gpu_precision == "fp16" else tol
        )
    vs_host = compare(
        host_out, dev, model.output, Tolerance(max_flip_rate=tol.max_flip_rate), model.threshold
    )
    vs_torch = None
    if model.torch_reference is not None:
        vs_torch = compare(model.torch_reference, dev, model.output, tol, model.threshold)
    parity_ok = (vs_torch or vs_host).passed
    peaks = [max(m.vm_hwm_kb, m.pss_total_kb or 0) for m in result.memory.values()]
    peak_mb = round(max(peaks) / 1024, 1) if peaks else None
    latency = latency_stats(result.timings_ms)
    return {
        **base,
        "status": "ok",
        "accelerator_used": used,
        "available_accelerators": list(result.available_accelerators),
        "fallback_reason": fallback,
        # where the runtime put the ops, from its own account (logcat, a profile, the graph): the
        # share on what was asked (cpu: on XNNPACK rather than built-in kernels)
        "placement": result.placement.to_dict() if result.placement else None,
        "accelerated_fraction": None if share is None else round(share, 4),
        "profile_note": result.profile_note,
        "engine": result.engine,
        "app_version": result.app_version,
        "latency": latency.to_dict(),
        # as benchmark_model and minibench report them: the first inference against the warm mean,
        # and what loading cost in memory (from after the app read the model's tensor types)
        "first_vs_warm_mean": round(result.first_inference_ms / latency.mean, 3)
        if result.first_inference_ms and latency.mean > 0
        else None,
        "init_memory_delta_kb": _init_delta(result.memory),
        "timings_ms": list(result.timings_ms),
        "load_ms": result.load_ms,
        "first_inference_ms": result.first_inference_ms,
        "copy_in_ms": result.copy_in_ms,  # outside the timed region, as on the phone
        "copy_out_ms": result.copy_out_ms,
        "memory": {k: vars(v) for k, v in result.memory.items()},
        "peak_ram_mb": peak_mb,
        "ram_budget_mb": budget,
        "budget_ok": None if budget is None or peak_mb is None else peak_mb < budget,
        "parity_vs_host": vs_host.to_dict(),
        "parity_vs_torch": vs_torch.to_dict() if vs_torch else None,
        "parity_ok": parity_ok,
        "environment": {
            **env,
            "governors": _governors_cache.get(info.serial, {}),
            "result_device": result.device,
            "result_thermal": result.thermal,
        },
    }


def _accelerator_truth(requested: str, result: RunResult) -> tuple[str | None, str | None, float | None]:
    """accelerator_used, fallback_reason and the share of ops on the requested hardware: an
    accelerator that took no op is a CPU run, whatever the app called it."""
    share = result.placement.fraction(requested) if result.placement else None
    used, fallback = result.accelerator_used, result.fallback_reason
    if requested != "cpu" and used == requested and share == 0.0 and result.placement:
        used = "cpu"
        fallback = (
            f"{requested.upper()} took 0 of {result.placement.total_ops} ops ({result.placement.source})"
        )
    return used, fallback, share


def _init_delta(memory: dict[str, Any]) -> dict[str, int | None] | None:
    """after_load minus the snapshot before loading (after_inspect, else before_load), per figure."""
    base, loaded = memory.get("after_inspect") or memory.get("before_load"), memory.get("after_load")
    if base is None or loaded is None:
        return None
    pss = None
    if base.pss_total_kb is not None and loaded.pss_total_kb is not None:
        pss = loaded.pss_total_kb - base.pss_total_kb
    return {"vm_rss_kb": loaded.vm_rss_kb - base.vm_rss_kb, "pss_total_kb": pss}


def _base_record(cell: Cell, spec: BenchSpec, info: DeviceInfo, run_id: str) -> dict[str, Any]:
    return {
        "key": cell.key(spec, info.model),
        "run_id": run_id,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": cell.model.name,
        "variant": cell.model.variant,
        "runtime": RUNTIMES[cell.model.format],
        "file": cell.model.path.name,
        "model_sha256": cell.model.sha256,
        "device": info.serial,
        "device_model": info.model,
        "soc": info.soc,
        "sdk": info.sdk,
        "fingerprint": info.fingerprint,
        "emulated": info.emulated,
        # under qemu the wall-clock figures are the emulator's: neither the phone's nor the host's
        "emulation": info.emulation or None,
        "accelerator": cell.accelerator,
        "threads": cell.threads,
        "runs": spec.runs,
        "warmup": spec.warmup,
        # an emulated device's timings come from this host's CPU: say which CPU and ISA produced them
        "host_cpu": host_cpu() if info.emulated else None,
    }


_governors_cache: dict[str, dict[str, str]] = {}


# -- orchestration -------------------------------------------------------------------------------


@contextmanager
def _adb_for(spec: BenchSpec) -> Iterator[tuple[Adb, str | None]]:
    if spec.device not in EMULATORS:
        yield Adb(spec.adb), spec.device
        return
    import tempfile

    from edgekit.arm64 import require_env
    from edgekit.device.emulator import FakeAdbServer, VirtualDevice

    arm64 = require_env() if spec.device == EMULATOR else None
    with tempfile.TemporaryDirectory(prefix="edgekit-emulator-") as tmp:
        serial = "emulator-pixel9" if arm64 else "emulator-x86-pixel9"
        device = VirtualDevice(Path(tmp), serial=serial, arm64=arm64)
        with FakeAdbServer([device]) as server:
            yield Adb(server.address, emulated_serials=frozenset({device.serial})), device.serial


def bench(spec: BenchSpec, progress: ProgressFn | None = None, adb: Adb | None = None) -> BenchReport:
    """Run the matrix; returns what happened. ``adb`` overrides the connection (tests)."""
    say: ProgressFn = progress or (lambda _m: None)
    models = _load_models(spec)
    out = ensure_output_dir(spec.out_dir)
    if adb is not None:
        return _bench_with(adb, spec.device, spec, models, out, say)
    with _adb_for(spec) as (conn, wanted):
        return _bench_with(conn, wanted, spec, models, out, say)


def _bench_with(adb: Adb, wanted: str | None, spec: BenchSpec, models: list[BenchModel], out: Path,
                say: ProgressFn) -> BenchReport:  # fmt: skip
    from edgekit.runners import open_runner

    serials = adb.select(wanted)
    phones = {s: adb.device(s) for s in serials}
    infos: dict[str, DeviceInfo] = {}
    for s, phone in phones.items():
        infos[s] = phone.info()
        _governors_cache[s] = phone.governors()
        say(
            f"{s}: {infos[s].model} ({infos[s].soc}), Android {infos[s].android}: app {ensure_app(phone, spec.apk)}"
        )
    host_out = {m.path: run_host(open_runner(m.format, m.path), m.parity_inputs) for m in models}
    done = {c["key"] for c in read_cells(out) if c.get("status") == "ok"} if spec.resume else set()
    models_attached = {infos[s].model for s in serials}
    report = BenchReport(out)
    work: queue.Queue[Cell] = queue.Queue()
    first = infos[serials[0]].profile
    sweep = spec.threads or (get_profile(first).threads if first else (4,))
    for m in models:
        for acc in spec.accelerators:
            for n_threads in sweep:
                cell = Cell(m, acc, n_threads)
                if any(cell.key(spec, dm) in done for dm in models_attached):
                    report.skipped += 1
                else:
                    work.put(cell)
    lock = threading.Lock()

    def worker(serial: str) -> None:
        while True:
            try:
                cell = work.get_nowait()
            except queue.Empty:
                return
            try:
                record = run_cell(phones[serial], infos[serial], cell, spec, host_out[cell.model.path])
            except DeviceGoneError as exc:
                with lock:
                    report.gone[serial] = str(exc)
                    work.put(cell)  # another phone may still take it
                return
            except DeviceError as exc:
                record = {
                    **_base_record(cell, spec, infos[serial], "-"),
                    "status": "error",
                    "error": str(exc),
                }
            except Exception as exc:  # a worker never dies: whatever went wrong is this cell's error
                first = str(exc).splitlines()[0][:200] if str(exc) else ""
                record = {
                    **_base_record(cell, spec, infos[serial], "-"),
                    "status": "error",
                    "error": f"{type(exc).__name__}: {first}",
                }
            with lock:
                append_cell(out, record)
                report.cells.append(record)
            with contextlib.suppress(Exception):  # a failing progress display must not end the run
                say(_progress_line(record))

    failures: list[BaseException] = []

    def guarded(serial: str) -> None:
        # a thread's exception would print a traceback and be lost: keep it for the caller
        try:
            worker(serial)
        except BaseException as exc:  # re-raised in the calling thread below
            failures.append(exc)

    workers = [threading.Thread(target=guarded, args=(s,), name=f"bench-{s}") for s in serials]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failures:
        if isinstance(failures[0], EdgekitError):
            raise failures[0]
        raise OutputError(
            f"the bench worker stopped: {type(failures[0]).__name__}: {failures[0]}".splitlines()[0]
        )
    report.pending = work.qsize()
    return report


def _progress_line(record: dict[str, Any]) -> str:
    if record["status"] != "ok":
        return f"{record['device']} {record['variant']} {record['accelerator']} x{record['threads']}: {record['error']}"
    lat = record["latency"]
    return (f"{record['device']} {record['variant']} {record['accelerator']} x{record['threads']}: "
            f"p50 {lat['p50']:.2f} ms, peak {record['peak_ram_mb']} MB, parity {'ok' if record['parity_ok'] else 'FAIL'}")  # fmt: skip


def latency_timer(device: str, adb: str | None, out_dir: Path) -> Callable[[Path, str], float | None]:
    """A timer for ``edgekit optimize``: p50 latency (ms, 1 thread) of one model on ``device``,
    run through the whole bench path; its records go to ``out_dir/<name>/``."""

    def timer(model: Path, name: str) -> float | None:
        spec = BenchSpec(
            target=model, out_dir=ensure_output_dir(Path(out_dir)) / name, device=device, adb=adb,
            threads=(1,), runs=30, warmup=5, parity_samples=4,
        )  # fmt: skip
        ok = [c for c in bench(spec).cells if c.get("status") == "ok"]
        return round(float(ok[0]["latency"]["p50"]), 3) if ok else None

    return timer


def devices(address: str | None, emulator: bool | str = False) -> list[DeviceInfo]:
    """`edgekit devices`: facts about every usable attached device (``emulator``: True or a name
    of :data:`EMULATORS` lists that emulated Pixel 9 instead)."""
    if emulator:
        name = emulator if isinstance(emulator, str) else EMULATOR
        with _adb_for(BenchSpec(target=Path("."), out_dir=Path("."), device=name)) as (adb, _):
            return [adb.device(s).info() for s in adb.select("all")]
    adb = Adb(address)
    usable = [a.serial for a in adb.attached() if a.state == "device"]
    if not usable:
        raise DeviceSelectionError("no usable Android device attached; plug one in with USB debugging on")
    return [adb.device(s).info() for s in usable]


def cell_json(cells: list[dict[str, Any]]) -> str:
    """Cells as JSON without the raw timings (they stay in bench.jsonl)."""
    return json.dumps([{k: v for k, v in c.items() if k != "timings_ms"} for c in cells], indent=2)
