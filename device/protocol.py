"""The host <-> benchmark-app protocol (android_app/PROTOCOL.md is its prose form).

The host pushes a run folder to ``/data/local/tmp/edgekit/<run_id>/`` holding the
model, raw little-endian input tensors and ``config.json``; the app writes
``result.json`` and raw output tensors to its external files folder
``/sdcard/Android/data/<package>/files/edgekit/<run_id>/``, which the host pulls.
Both JSON files carry a schema name and version; a reader refuses anything else.
The shared test vectors in ``android_app/protocol/vectors/`` are checked by the
Java core's tests and by this module's tests.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgekit.device.placement import Placement
from edgekit.errors import ProtocolError
from edgekit.validate import parse_json

PACKAGE = "dev.edgekit.bench"
INSTRUMENTATION = f"{PACKAGE}/.BenchInstrumentation"
ACTIVITY = f"{PACKAGE}/.BenchActivity"
#: versionName of the app this host speaks to; a different installed version is reinstalled.
APP_VERSION = "0.1.0"
PROTOCOL_VERSION = 1
DEVICE_ROOT = "/data/local/tmp/edgekit"
RESULTS_ROOT = f"/sdcard/Android/data/{PACKAGE}/files/edgekit"
CONFIG_SCHEMA = "edgekit.bench.config"
RESULT_SCHEMA = "edgekit.bench.result"

DTYPES = {"float32": "<f4", "float16": "<f2", "int8": "i1", "uint8": "u1", "int32": "<i4"}
ACCELERATORS = ("cpu", "gpu", "npu")
#: LiteRT (CompiledModel, classic Interpreter), ONNX Runtime, ExecuTorch
ENGINES = ("compiled_model", "interpreter", "onnxruntime", "executorch")
GPU_PRECISIONS = ("fp32", "fp16")
#: bounds a result may not exceed (the host also checks the outputs against the inputs it
#: pushed): a hostile result must not keep the host pulling for minutes
MAX_OUTPUTS = 4096
MAX_TENSOR_ELEMENTS = 1 << 24
MAX_TIMINGS = 100_000
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _require(d: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise ProtocolError(f"{where}: missing field {key!r}")
    value = d[key]
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ProtocolError(f"{where}: field {key!r} must be a number, got a boolean")
    if not isinstance(value, kind):
        raise ProtocolError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _optional(d: dict[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    return _require(d, key, kind, where) if d.get(key) is not None else default


def _finite_ms(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _load(text: str, where: str) -> Any:
    return parse_json(text, where, ProtocolError)


def _check_schema(d: Any, schema: str, where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ProtocolError(f"{where}: not a JSON object")
    if d.get("schema") != schema:
        raise ProtocolError(f"{where}: schema is {d.get('schema')!r}, expected {schema!r}")
    if d.get("schema_version") != PROTOCOL_VERSION:
        raise ProtocolError(
            f"{where}: schema_version {d.get('schema_version')!r} is not {PROTOCOL_VERSION}; "
            "update the app or edgekit so both speak the same protocol"
        )
    return d


@dataclass(frozen=True)
class TensorFile:
    """One raw little-endian tensor file: ``prod(shape) * itemsize`` bytes, no header."""

    file: str
    dtype: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if not _FILE.match(self.file):
            raise ProtocolError(f"tensor file name {self.file!r} must be a plain name ([A-Za-z0-9._-])")
        if self.dtype not in DTYPES:
            raise ProtocolError(f"tensor dtype {self.dtype!r} not in {', '.join(DTYPES)}")
        if not self.shape or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in self.shape):
            raise ProtocolError(f"tensor shape {list(self.shape)} must be positive integers")
        if len(self.shape) > 8 or math.prod(self.shape) > MAX_TENSOR_ELEMENTS:
            raise ProtocolError(
                f"tensor shape {list(self.shape)} is larger than any detector output or input"
            )

    @property
    def nbytes(self) -> int:
        """Exact size of the file in bytes."""
        return int(np.prod(self.shape)) * np.dtype(DTYPES[self.dtype]).itemsize

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"file": self.file, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> TensorFile:
        """Parse and validate the JSON form."""
        if not isinstance(d, dict):
            raise ProtocolError(f"{where}: tensor entry is not an object")
        shape = _require(d, "shape", list, where)
        return cls(_require(d, "file", str, where), _require(d, "dtype", str, where), tuple(shape))


def encode_tensor(arr: np.ndarray, dtype: str) -> bytes:
    """Raw little-endian bytes of ``arr`` as ``dtype``."""
    return np.ascontiguousarray(arr, dtype=np.dtype(DTYPES[dtype])).tobytes()


def decode_tensor(data: bytes, spec: TensorFile) -> np.ndarray:
    """The array in ``data``; a ProtocolError when the size does not match the spec."""
    if len(data) != spec.nbytes:
        raise ProtocolError(
            f"{spec.file}: {len(data)} bytes, expected {spec.nbytes} for {spec.dtype} {list(spec.shape)}"
        )
    return np.frombuffer(data, dtype=np.dtype(DTYPES[spec.dtype])).reshape(spec.shape).copy()


@dataclass(frozen=True)
class RunConfig:
    """``config.json``: what the app must run and how."""

    run_id: str
    model: str
    model_sha256: str
    model_size: int
    inputs: tuple[TensorFile, ...]
    accelerator: str = "cpu"
    threads: int = 4
    warmup: int = 10
    runs: int = 100
    engine: str = "compiled_model"
    gpu_precision: str = "fp32"
    #: a per-op profile after the timed runs (ONNX Runtime's profiler, ExecuTorch's ETDump)
    profile: bool = False

    def __post_init__(self) -> None:
        if not _RUN_ID.match(self.run_id):
            raise ProtocolError(f"run_id {self.run_id!r} must match {_RUN_ID.pattern}")
        if not _FILE.match(self.model):
            raise ProtocolError(f"model file name {self.model!r} must be a plain name")
        if not re.fullmatch(r"[0-9a-f]{64}", self.model_sha256):
            raise ProtocolError("model_sha256 must be 64 lowercase hex digits")
        if self.model_size <= 0:
            raise ProtocolError("model_size must be positive")
        if not self.inputs:
            raise ProtocolError("inputs must list at least one tensor file")
        if self.accelerator not in ACCELERATORS:
            raise ProtocolError(f"accelerator {self.accelerator!r} not in {', '.join(ACCELERATORS)}")
        if self.engine not in ENGINES:
            raise ProtocolError(f"engine {self.engine!r} not in {', '.join(ENGINES)}")
        if self.gpu_precision not in GPU_PRECISIONS:
            raise ProtocolError(f"gpu_precision {self.gpu_precision!r} not in {', '.join(GPU_PRECISIONS)}")
        if not 1 <= self.threads <= 64:
            raise ProtocolError("threads must be between 1 and 64")
        if self.warmup < 0 or not 1 <= self.runs <= 100_000:
            raise ProtocolError("warmup must be >= 0 and runs between 1 and 100000")

    def to_json(self) -> str:
        """The ``config.json`` text."""
        d = {"schema": CONFIG_SCHEMA, "schema_version": PROTOCOL_VERSION, **asdict(self)}
        d["inputs"] = [t.to_dict() for t in self.inputs]
        return json.dumps(d, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        """Parse and validate ``config.json`` text."""
        where = "config.json"
        d = _check_schema(_load(text, where), CONFIG_SCHEMA, where)
        inputs = _require(d, "inputs", list, where)
        return cls(
            run_id=_require(d, "run_id", str, where),
            model=_require(d, "model", str, where),
            model_sha256=_require(d, "model_sha256", str, where),
            model_size=_require(d, "model_size", int, where),
            inputs=tuple(TensorFile.from_dict(t, f"{where} inputs[{i}]") for i, t in enumerate(inputs)),
            accelerator=_optional(d, "accelerator", str, "cpu", where),
            threads=_optional(d, "threads", int, 4, where),
            warmup=_optional(d, "warmup", int, 10, where),
            runs=_optional(d, "runs", int, 100, where),
            engine=_optional(d, "engine", str, "compiled_model", where),
            gpu_precision=_optional(d, "gpu_precision", str, "fp32", where),
            profile=_optional(d, "profile", bool, False, where),
        )


@dataclass(frozen=True)
class Memory:
    """Memory of the app process at one moment, in KiB (PSS figures only from Android)."""

    vm_rss_kb: int
    vm_hwm_kb: int
    pss_total_kb: int | None = None
    pss_graphics_kb: int | None = None

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Memory:
        """Parse the JSON form."""
        if not isinstance(d, dict):
            raise ProtocolError(f"{where}: not an object")
        values = [_require(d, k, int, where) for k in ("vm_rss_kb", "vm_hwm_kb")]
        values += [_optional(d, k, int, None, where) for k in ("pss_total_kb", "pss_graphics_kb")]
        if any(v is not None and not 0 <= v < 1 << 40 for v in values):
            raise ProtocolError(f"{where}: memory figures must be non-negative KiB")
        return cls(*values)


@dataclass(frozen=True)
class RunResult:
    """``result.json``: raw timings and facts; the host computes every statistic."""

    run_id: str
    status: str
    app_version: str
    engine: str
    accelerator_requested: str
    accelerator_used: str | None
    available_accelerators: tuple[str, ...]
    threads: int
    load_ms: float | None = None
    first_inference_ms: float | None = None
    timings_ms: tuple[float, ...] = ()
    #: median copy of the input in and the outputs out per timed run (outside timings_ms)
    copy_in_ms: float | None = None
    copy_out_ms: float | None = None
    outputs: tuple[TensorFile, ...] = ()
    memory: dict[str, Memory] = field(default_factory=dict)
    fallback_reason: str | None = None
    error_kind: str | None = None
    error_message: str | None = None
    device: dict[str, Any] = field(default_factory=dict)
    thermal: dict[str, Any] = field(default_factory=dict)
    emulated: bool = False
    #: where the runtime put the ops (None: the runtime gave no account of it)
    placement: Placement | None = None
    #: a per-op profile file written next to the outputs, and why a profile or placement is missing
    profile_file: str | None = None
    profile_note: str | None = None

    def to_json(self) -> str:
        """The ``result.json`` text."""
        d = {"schema": RESULT_SCHEMA, "schema_version": PROTOCOL_VERSION, **asdict(self)}
        d["placement"] = self.placement.to_dict() if self.placement else None
        d["outputs"] = [t.to_dict() for t in self.outputs]
        d["available_accelerators"] = list(self.available_accelerators)
        d["timings_ms"] = list(self.timings_ms)
        return json.dumps(d, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RunResult:
        """Parse and validate ``result.json`` text."""
        where = "result.json"
        d = _check_schema(_load(text, where), RESULT_SCHEMA, where)
        status = _require(d, "status", str, where)
        if status not in ("ok", "error"):
            raise ProtocolError(f"{where}: status {status!r} must be 'ok' or 'error'")
        timings = _require(d, "timings_ms", list, where)
        if len(timings) > MAX_TIMINGS or any(not _finite_ms(t) for t in timings):
            raise ProtocolError(
                f"{where}: timings_ms must be at most {MAX_TIMINGS} finite non-negative numbers"
            )
        if status == "ok" and not timings:
            raise ProtocolError(f"{where}: an ok result needs timings_ms")
        if status == "error" and not d.get("error_kind"):
            raise ProtocolError(f"{where}: an error result needs error_kind")
        raw_memory = _optional(d, "memory", dict, {}, where) or {}
        memory = {str(k): Memory.from_dict(v, f"{where} memory.{k}") for k, v in raw_memory.items()}
        outputs = _optional(d, "outputs", list, [], where) or []
        if len(outputs) > MAX_OUTPUTS:
            raise ProtocolError(
                f"{where}: {len(outputs)} output files listed; at most {MAX_OUTPUTS} are read"
            )
        accelerators = _optional(d, "available_accelerators", list, [], where) or []
        if not all(isinstance(a, str) for a in accelerators):
            raise ProtocolError(f"{where}: available_accelerators must be a list of names")
        for key in ("load_ms", "first_inference_ms", "copy_in_ms", "copy_out_ms"):
            if d.get(key) is not None and not _finite_ms(d[key]):
                raise ProtocolError(f"{where}: {key} must be a finite non-negative number")
        for key in ("accelerator_used", "fallback_reason", "error_kind", "error_message", "profile_note"):
            _optional(d, key, str, None, where)
        profile_file = _optional(d, "profile_file", str, None, where)
        if profile_file is not None and not _FILE.match(profile_file):
            raise ProtocolError(f"{where}: profile_file {profile_file[:60]!r} must be a plain file name")
        placement = d.get("placement")
        for key in ("device", "thermal"):
            _optional(d, key, dict, None, where)
        return cls(
            run_id=_require(d, "run_id", str, where),
            status=status,
            app_version=_require(d, "app_version", str, where),
            engine=_require(d, "engine", str, where),
            accelerator_requested=_require(d, "accelerator_requested", str, where),
            accelerator_used=d.get("accelerator_used"),
            available_accelerators=tuple(accelerators),
            threads=_require(d, "threads", int, where),
            load_ms=d.get("load_ms"),
            first_inference_ms=d.get("first_inference_ms"),
            timings_ms=tuple(float(t) for t in timings),
            copy_in_ms=d.get("copy_in_ms"),
            copy_out_ms=d.get("copy_out_ms"),
            outputs=tuple(TensorFile.from_dict(t, f"{where} outputs[{i}]") for i, t in enumerate(outputs)),
            memory=memory,
            fallback_reason=d.get("fallback_reason"),
            error_kind=d.get("error_kind"),
            error_message=d.get("error_message"),
            device=dict(d.get("device") or {}),
            thermal=dict(d.get("thermal") or {}),
            emulated=bool(d.get("emulated", False)),
            placement=None if placement is None else Placement.from_dict(placement, f"{where} placement"),
            profile_file=profile_file,
            profile_note=d.get("profile_note"),
        )
