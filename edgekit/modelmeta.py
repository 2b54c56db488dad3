"""Preprocessing that travels with the model: a small JSON file inside the ``.pt2`` archive.

A ``.pt2`` says nothing about how its inputs were normalised, and a wrong guess is silent
(parity passes, AUC looks fine, accuracy at the threshold collapses). edgekit stores the
preprocessing next to the program, with ``torch.export.save(..., extra_files=...)``, reads
it back in every command, and records in the manifest where it came from.

Add it to your own model with one call::

    import edgekit
    edgekit.save_pt2(model, "detector.pt2", example_input=torch.randn(1, 3, 224, 224),
                     mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgekit.errors import FileFormatError, ModelLoadError, UsageError
from edgekit.validate import parse_json

#: The archive member (under ``<archive>/extra/``) that holds the preprocessing.
PREPROCESS_FILE = "edgekit_preprocess.json"
PREPROCESS_SCHEMA = "edgekit.preprocess"


def preprocess_json(
    height: int,
    width: int,
    mean: Sequence[float],
    std: Sequence[float],
    resize: str = "bilinear",
    scale: float = 1.0 / 255.0,
) -> str:
    """The JSON text stored in a ``.pt2`` (validated by building a Preprocess first)."""
    from edgekit.spec import Preprocess

    pre = Preprocess(height=int(height), width=int(width), resize=resize, scale=float(scale),
                     mean=_triple(mean, "mean"), std=_triple(std, "std"))  # fmt: skip
    return json.dumps({"schema": PREPROCESS_SCHEMA, "schema_version": 1, **pre.to_dict()})


def _triple(values: Sequence[float], what: str) -> tuple[float, float, float]:
    vals = [float(v) for v in values]
    if len(vals) == 1:
        vals *= 3
    if len(vals) != 3 or not all(math.isfinite(v) for v in vals):
        raise UsageError(f"{what} takes 1 or 3 finite numbers")
    return (vals[0], vals[1], vals[2])


def parse_preprocess(text: str, where: str) -> dict[str, Any]:
    """Validate the stored JSON; returns the Preprocess fields. A bad file is a FileFormatError."""
    from edgekit.spec import Preprocess

    try:
        d = parse_json(text, where, error=ValueError)
        if not isinstance(d, dict) or d.get("schema") != PREPROCESS_SCHEMA or d.get("schema_version") != 1:
            raise ValueError("not an edgekit preprocessing record")
        pre = Preprocess.from_dict(d)
    except (ValueError, KeyError, TypeError, UsageError) as exc:
        raise FileFormatError(
            f"{where}: the stored preprocessing is not valid ({exc}); re-save the model"
        ) from None
    return pre.to_dict()


def read_preprocess(path: Path) -> dict[str, Any] | None:
    """The preprocessing stored in a ``.pt2`` (read from the zip, nothing unpickled), or None."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            member = next((n for n in zf.namelist() if n.endswith(f"/extra/{PREPROCESS_FILE}")), None)
            if member is None:
                return None
            if zf.getinfo(member).file_size > 1 << 16:
                raise FileFormatError(f"{path}: {PREPROCESS_FILE} is too large to be a preprocessing record")
            text = zf.read(member).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, OSError):
        return None
    return parse_preprocess(text, str(path))


def save_pt2(
    model: Any,
    path: str | Path,
    *,
    example_input: Any = None,
    mean: Sequence[float] = (0.485, 0.456, 0.406),
    std: Sequence[float] = (0.229, 0.224, 0.225),
    resize: str = "bilinear",
) -> Path:
    """Save ``model`` (an ``nn.Module`` with ``example_input``, or an ``ExportedProgram``) as a
    ``.pt2`` that carries its preprocessing, so every edgekit command uses the right one."""
    import io

    import torch

    from edgekit._capture import captured_output
    from edgekit._io import atomic_write_bytes

    if isinstance(model, torch.export.ExportedProgram):
        program = model
    elif isinstance(model, torch.nn.Module):
        if example_input is None:
            raise UsageError("an nn.Module needs example_input (e.g. torch.randn(1, 3, 224, 224))")
        was_training = model.training
        model.eval()
        try:
            with captured_output():
                program = torch.export.export(model, (example_input,), strict=False)
        except Exception as exc:
            raise ModelLoadError(
                f"torch.export could not capture the model ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); check example_input's shape"
            ) from exc
        finally:
            model.train(was_training)
    else:
        raise UsageError(f"model must be an nn.Module or an ExportedProgram, not {type(model).__name__}")
    shape = _input_shape(program)
    if shape is None or len(shape) != 4:
        raise UsageError("the model's input must be one NCHW image tensor with fixed height and width")
    text = preprocess_json(shape[2], shape[3], mean, std, resize)
    buf = io.BytesIO()
    torch.export.save(program, buf, extra_files={PREPROCESS_FILE: text})
    target = Path(path)
    atomic_write_bytes(target, buf.getvalue())
    return target


def _input_shape(program: Any) -> tuple[int, ...] | None:
    user_inputs = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            val = node.meta.get("val")
            if val is not None and hasattr(val, "shape"):
                # a symbolic (dynamic) dim counts as 1: edgekit exports at batch 1
                return tuple(1 if type(d).__name__ == "SymInt" else int(d) for d in val.shape)
    return None


#: where the preprocessing of an export came from (recorded in the manifest)
SOURCES = ("model", "flags", "assumed")


def resolve_preprocess(
    height: int,
    width: int,
    stored: dict[str, Any] | None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    resize: str | None = None,
) -> tuple[Any, str]:
    """The preprocessing for a model input of ``height`` x ``width`` and where it came from.

    Flags override what the model file stores; with neither, ImageNet normalisation is
    assumed and the source says so (``assumed``), so no command passes a guess off as fact.
    """
    from edgekit.spec import Preprocess

    base = Preprocess(height=height, width=width)
    model = dict(stored or {})
    flags_given = mean is not None or std is not None or resize is not None
    pre = Preprocess(
        height=height,
        width=width,
        resize=resize or model.get("resize", base.resize),
        scale=float(model.get("scale", base.scale)),
        mean=tuple(mean) if mean is not None else tuple(model.get("mean", base.mean)),  # type: ignore[arg-type]
        std=tuple(std) if std is not None else tuple(model.get("std", base.std)),  # type: ignore[arg-type]
    )
    if stored is not None:
        source = "flags" if flags_given else "model"
    else:
        source = "flags" if mean is not None and std is not None else "assumed"
    return pre, source
