"""The versioned export manifest: what was exported, from what, and how well it matches.

Plain JSON on disk (``manifest.json``); the dataclasses here only give it names.
A reader refuses a manifest of another schema version with the fix.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit._io import atomic_write_text
from edgekit.errors import UsageError
from edgekit.spec import OutputKind, OutputSpec, Preprocess

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
            return OutputSpec(OutputKind(o["kind"]), int(o["classes"]), int(o["positive_index"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(
                f"the manifest's 'output' is not valid ({exc}); re-run 'edgekit export'"
            ) from None

    def preprocess_spec(self) -> Preprocess:
        """The recorded preprocessing as a spec (what calibration, eval and the phone feed)."""
        try:
            p = dict(self.preprocess)
            return Preprocess(**{**p, "mean": tuple(p["mean"]), "std": tuple(p["std"])})
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(
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


def manifest_from_dict(d: dict[str, Any]) -> Manifest:
    """Rebuild a Manifest from its JSON dict, checking the schema version."""
    if d.get("schema") != SCHEMA:
        raise UsageError(
            "not an edgekit manifest (no 'schema': 'edgekit.manifest'); point at an export folder"
        )
    if d.get("schema_version") != SCHEMA_VERSION:
        raise UsageError(
            f"manifest schema version {d.get('schema_version')} is not {SCHEMA_VERSION}; "
            "re-run 'edgekit export' with this edgekit version"
        )
    fields = dict(d)
    fields["variants"] = tuple(VariantRecord(**v) for v in d.get("variants", []))
    return Manifest(**fields)


def load_manifest(path: Path) -> Manifest:
    """Read ``manifest.json`` (or the one inside a folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"no manifest at {path}; run 'edgekit export' first") from exc
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc}); re-run 'edgekit export'") from exc
    return manifest_from_dict(data)
