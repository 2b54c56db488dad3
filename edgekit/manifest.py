"""The versioned export manifest: what was exported, from what, and how well it matches.

Plain JSON on disk (``manifest.json``); the dataclasses here only give it names.
A reader refuses a manifest of another schema version with the fix.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgekit._io import atomic_write_text, sha256_file
from edgekit.errors import FileFormatError, UsageError
from edgekit.spec import OutputKind, OutputSpec, Preprocess
from edgekit.validate import contained, is_sha256, only_keys, optional, parse_json, require, safe_name

SCHEMA = "edgekit.manifest"
SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
PARITY_INPUTS = "parity_inputs.npy"
PARITY_REFERENCE = "parity_reference.npy"


@dataclass(frozen=True)
class VariantRecord:
    """One exported file and its parity against the PyTorch reference."""

    name: str
    file: str | None
    format: str
    precision: str
    status: str
    size_bytes: int | None = None
    sha256: str | None = None
    export_seconds: float | None = None
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] | None = None
    auc: float | None = None
    delegation: dict[str, Any] | None = None
    sparsity: dict[str, Any] | None = None
    error: str | None = None
    #: the INT8 repair search: attempts on the check set, the step chosen, the ops that lose most
    repair: dict[str, Any] | None = None
    #: the host's own parity when the verdict (``parity``) was taken on the phone's kernels
    parity_host: dict[str, Any] | None = None
    #: the run on the arm64 kernels (see :mod:`edgekit.arm64.check`), or why there was none
    arm64: dict[str, Any] | None = None
    #: where ``parity`` was judged: arm64, host+arm64 or host
    judged_on: str = "host"

    @property
    def passed(self) -> bool:
        """Exported and within its parity tolerance."""
        return self.status == "ok" and bool(self.parity and self.parity.get("passed"))


@dataclass(frozen=True)
class Manifest:
    """Everything `edgekit export` wrote, as saved in ``manifest.json``."""

    name: str
    created: str
    source: dict[str, Any]
    input: dict[str, Any]
    output: dict[str, Any]
    preprocess: dict[str, Any]
    threshold: float
    calibration: dict[str, Any] | None
    parity_data: dict[str, Any]
    reference: dict[str, Any]
    variants: tuple[VariantRecord, ...]
    tools: dict[str, str]
    #: where the preprocessing came from: model (stored in the .pt2), flags, or assumed (ImageNet)
    preprocess_source: str = "unknown"
    #: the arm64 environment parity ran in (label, CPU features its runtimes saw), or why none
    target: dict[str, Any] | None = None
    #: binary (1-bit) layers found in the graph and how they are stored and run (None: none)
    binary: dict[str, Any] | None = None
    schema: str = SCHEMA
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with ``schema`` and ``schema_version`` first."""
        d = asdict(self)
        d["variants"] = [asdict(v) for v in self.variants]
        head = {"schema": d.pop("schema"), "schema_version": d.pop("schema_version")}
        return {**head, **d}

    def to_json(self) -> str:
        """Pretty JSON text (UTF-8 safe, stable key order)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def save(self, out_dir: Path) -> Path:
        """Write ``manifest.json`` atomically into ``out_dir``."""
        path = Path(out_dir) / MANIFEST_NAME
        atomic_write_text(path, self.to_json())
        return path

    @property
    def all_passed(self) -> bool:
        """True when every variant exported and passed parity."""
        return all(v.passed for v in self.variants)

    def output_spec(self) -> OutputSpec:
        """The recorded detector output as a spec (how to turn outputs into a fake score)."""
        try:
            o = self.output
            classes, positive = o["classes"], o["positive_index"]
            if not isinstance(classes, int) or not isinstance(positive, int) or positive not in (0, 1):
                raise TypeError("classes and positive_index must be integers, positive_index 0 or 1")
            return OutputSpec(OutputKind(o["kind"]), classes, positive)
        except (KeyError, TypeError, ValueError, UsageError) as exc:
            raise FileFormatError(
                f"the manifest's 'output' is not valid ({exc}); re-run 'edgekit export'"
            ) from None

    def preprocess_spec(self) -> Preprocess:
        """The recorded preprocessing as a spec (what calibration, eval and the phone feed)."""
        try:
            return Preprocess.from_dict(self.preprocess)
        except (KeyError, TypeError, ValueError, UsageError) as exc:
            raise FileFormatError(
                f"the manifest's 'preprocess' is not valid ({exc}); re-run 'edgekit export'"
            ) from None

    def variant(self, name: str) -> VariantRecord:
        """The record of variant ``name``."""
        for v in self.variants:
            if v.name == name:
                return v
        raise UsageError(
            f"no variant {name!r} in the manifest; it has {', '.join(v.name for v in self.variants)}"
        )


_MAX_MANIFEST_BYTES = 16 << 20
_FORMATS = ("tflite", "onnx", "pte")
_STATUSES = ("ok", "failed")


def _variant_from_dict(v: Any, where: str) -> VariantRecord:
    if not isinstance(v, dict):
        raise FileFormatError(f"{where}: not an object")
    only_keys(v, {f.name for f in fields(VariantRecord)}, where)
    name = safe_name(require(v, "name", str, where), f"{where}: variant name")
    where = f"variant {name!r}"
    file = optional(v, "file", str, where)
    if file is not None:
        safe_name(file, f"{where}: file")
    fmt, status = require(v, "format", str, where), require(v, "status", str, where)
    if fmt not in _FORMATS or status not in _STATUSES:
        raise FileFormatError(f"{where}: format must be {' or '.join(_FORMATS)} and status ok or failed")
    size = optional(v, "size_bytes", int, where)
    sha = optional(v, "sha256", str, where)
    if (size is not None and size < 0) or (sha is not None and not is_sha256(sha)):
        raise FileFormatError(f"{where}: size_bytes must be >= 0 and sha256 64 hex digits")
    if status == "ok" and (file is None or size is None or sha is None):
        raise FileFormatError(f"{where}: an exported variant needs file, size_bytes and sha256")
    inp = optional(v, "input", dict, where) or {}
    if inp.get("layout", "nchw") not in ("nchw", "nhwc"):
        raise FileFormatError(f"{where}: input layout must be nchw or nhwc")
    return VariantRecord(
        name=name, file=file, format=fmt, precision=require(v, "precision", str, where), status=status,
        size_bytes=size, sha256=sha, export_seconds=optional(v, "export_seconds", (int, float), where),
        input=inp, output=optional(v, "output", dict, where) or {},
        parity=optional(v, "parity", dict, where), auc=optional(v, "auc", (int, float), where),
        delegation=optional(v, "delegation", dict, where), sparsity=optional(v, "sparsity", dict, where),
        error=optional(v, "error", str, where), repair=optional(v, "repair", dict, where),
        parity_host=optional(v, "parity_host", dict, where), arm64=optional(v, "arm64", dict, where),
        judged_on=_judged_on(optional(v, "judged_on", str, where), where),
    )  # fmt: skip


def _judged_on(value: str | None, where: str) -> str:
    if value is None:
        return "host"
    if value not in ("host", "arm64", "host+arm64"):
        raise FileFormatError(f"{where}: judged_on must be host, arm64 or host+arm64")
    return value


def _binary(d: dict[str, Any] | None, where: str) -> dict[str, Any] | None:
    """The binary-layer record: a statement and at most 4096 layers (shown, never acted on)."""
    if d is None:
        return None
    statement = require(d, "statement", str, where)
    layers = require(d, "layers", list, where)
    if len(statement) > 2000 or len(layers) > 4096 or not all(isinstance(x, dict) for x in layers):
        raise FileFormatError(f"{where}: 'binary' must hold a statement and at most 4096 layer records")
    exact = optional(d, "int8_exact", str, where)
    return {"statement": statement, "layers": layers, **({"int8_exact": exact[:200]} if exact else {})}


def manifest_from_dict(d: Any) -> Manifest:
    """Validate a manifest's JSON content and rebuild it; a :class:`FileFormatError` names the problem.

    Types, names and file names are checked here; that the files named exist and match
    their recorded size and sha256 is checked by :func:`verified_file` when they are used.
    """
    if not isinstance(d, dict) or d.get("schema") != SCHEMA:
        raise FileFormatError(
            "not an edgekit manifest (no 'schema': 'edgekit.manifest'); point at an export folder"
        )
    if d.get("schema_version") != SCHEMA_VERSION:
        raise FileFormatError(
            f"manifest schema version {d.get('schema_version')!r} is not {SCHEMA_VERSION}; "
            "re-run 'edgekit export' with this edgekit version"
        )
    where = "manifest"
    only_keys(d, {f.name for f in fields(Manifest)}, where)
    raw_variants = require(d, "variants", list, where)
    variants = tuple(_variant_from_dict(v, f"manifest variants[{i}]") for i, v in enumerate(raw_variants))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise FileFormatError("manifest: two variants share a name")
    files = [v.file for v in variants if v.file]
    if len(set(files)) != len(files):
        raise FileFormatError("manifest: two variants name the same file")
    parity = require(d, "parity_data", dict, where)
    for key in ("inputs_file", "reference_file"):
        safe_name(require(parity, key, str, "manifest parity_data"), f"manifest parity_data.{key}")
    source = require(d, "source", dict, where)
    optional(source, "path", str, "manifest source")
    optional(source, "arch", str, "manifest source")
    optional(source, "arch_kwargs", dict, "manifest source")
    shape = require(require(d, "input", dict, where), "shape", list, "manifest input")
    if len(shape) != 4 or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in shape):
        raise FileFormatError("manifest input: shape must be 4 positive integers")
    threshold = require(d, "threshold", (int, float), where)
    if not 0 < threshold < 1:
        raise FileFormatError("manifest: threshold must be between 0 and 1")
    manifest = Manifest(
        name=safe_name(require(d, "name", str, where), "manifest name"),
        created=str(require(d, "created", str, where)),
        source=source,
        input=d["input"],
        output=require(d, "output", dict, where),
        preprocess=require(d, "preprocess", dict, where),
        threshold=float(threshold),
        calibration=optional(d, "calibration", dict, where),
        parity_data=parity,
        reference=require(d, "reference", dict, where),
        variants=variants,
        tools=require(d, "tools", dict, where),
        preprocess_source=str(optional(d, "preprocess_source", str, where) or "unknown"),
        target=optional(d, "target", dict, where),
        binary=_binary(optional(d, "binary", dict, where), where),
    )
    manifest.output_spec()  # both raise FileFormatError on a bad spec, here rather than later
    manifest.preprocess_spec()
    return manifest


def load_manifest(path: Path) -> Manifest:
    """Read and validate ``manifest.json`` (or the one inside a folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    try:
        if path.stat().st_size > _MAX_MANIFEST_BYTES:
            raise FileFormatError(
                f"{path} is over {_MAX_MANIFEST_BYTES >> 20} MB: not a manifest edgekit wrote"
            )
        data = parse_json(path.read_text(encoding="utf-8"), str(path), error=ValueError)
    except FileNotFoundError as exc:
        raise UsageError(f"no manifest at {path}; run 'edgekit export' first") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{path} is not valid JSON ({exc}); re-run 'edgekit export'") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return manifest_from_dict(data)
    except FileFormatError as exc:
        raise FileFormatError(f"{path}: {exc}") from None


def export_root(path: Path) -> Path:
    """The export folder of a manifest path or folder."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def verified_file(root: Path, variant: VariantRecord) -> Path:
    """The variant's file inside ``root``, checked against its recorded size and sha256."""
    path = contained(root, variant.file, f"variant {variant.name!r} file")
    if not path.is_file():
        raise FileFormatError(
            f"variant {variant.name!r}: {variant.file} is missing from {root}; re-run 'edgekit export'"
        )
    size = path.stat().st_size
    if size != variant.size_bytes or sha256_file(path) != variant.sha256:
        raise FileFormatError(
            f"variant {variant.name!r}: {variant.file} does not match the size and sha256 the manifest records "
            "(replaced or corrupted); re-run 'edgekit export'"
        )
    return path


def parity_arrays(root: Path, manifest: Manifest) -> tuple[Any, Any]:
    """The pinned parity inputs and PyTorch outputs, checked against the manifest's input shape."""
    import numpy as np

    arrays = []
    for key in ("inputs_file", "reference_file"):
        path = contained(root, manifest.parity_data[key], f"manifest parity_data.{key}")
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except (OSError, ValueError, EOFError) as exc:
            raise FileFormatError(
                f"{path.name} is missing or not a readable .npy ({str(exc).splitlines()[0][:120]}); "
                "re-run 'edgekit export'"
            ) from None
    x, ref = arrays
    sample = tuple(manifest.input["shape"][1:])
    if x.dtype != np.float32 or x.ndim != 4 or tuple(x.shape[1:]) != sample or not np.isfinite(x).all():
        raise FileFormatError(
            f"parity inputs of shape {x.shape} do not fit the model input {sample}; re-run 'edgekit export'"
        )
    if ref.ndim != 2 or len(ref) != len(x) or not np.isfinite(ref).all():
        raise FileFormatError(
            "parity reference outputs do not match the parity inputs; re-run 'edgekit export'"
        )
    return x, ref
