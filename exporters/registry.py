"""The variant registry: ``@register(...)`` on a function that turns an ExportContext into bytes."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.errors import EdgekitError, UsageError
from edgekit.spec import InputSpec, OutputSpec, Tolerance

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class VariantInfo:
    """What a registered variant is: file format, precision family and its needs."""

    name: str
    format: str
    precision: str
    suffix: str
    needs_calibration: bool
    description: str
    build: Callable[[ExportContext], bytes] = field(repr=False, compare=False)
    #: the CLI flags (see :func:`declare_flag`) that must all be on for the variant to be exported;
    #: none: always exported
    flags: tuple[str, ...] = ()

    def filename(self, stem: str) -> str:
        """``<stem>.<suffix>.<format>``, e.g. ``model.int8.tflite``."""
        return f"{stem}.{self.suffix}.{self.format}"


@dataclass
class ExportContext:
    """What every exporter may use; the float TFLite model is converted once and shared."""

    module: torch.nn.Module
    input_spec: InputSpec
    calibration: np.ndarray | None
    recipe: Path | None = None
    num_threads: int = 2
    log: list[str] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict)
    #: the tolerance static INT8 variants must reach on the check set; None: no repair search
    int8_target: Tolerance | None = None
    #: seconds the learned repair rungs (learned rounding) may spend per variant; 0 skips them
    int8_effort: float = 600.0
    threshold: float = 0.5
    output: OutputSpec = field(default_factory=OutputSpec)
    #: an :class:`edgekit.arm64.Arm64Worker` when the phone's kernels are at hand: integer
    #: variants whose kernels differ by CPU (ONNX INT8) are repaired on the outputs it computes
    target: Any = None
    #: where a long step says what it is doing (the CLI's progress line); silent by default
    say: Callable[[str], None] = field(default=lambda _message: None, repr=False)

    def check_set(self, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """(inputs in the model's NCHW layout, PyTorch outputs) of up to ``n`` calibration images.

        The INT8 repair search is judged on these, never on the parity set, so the parity
        that is reported stays an unseen check of the chosen repair.
        """
        cached = self.cache.get("check_set")
        if cached is None:
            import torch

            if self.calibration is None or not len(self.calibration):
                raise UsageError("the INT8 repair search needs calibration data: pass --calib DIR")
            x = np.ascontiguousarray(self.calibration[:n], dtype=np.float32)
            with torch.inference_mode():
                outs = [self.module(torch.from_numpy(x[i : i + 1])) for i in range(len(x))]
            ref = np.concatenate(
                [(o[0] if isinstance(o, (tuple, list)) else o).reshape(1, -1).numpy() for o in outs]
            )
            cached = self.cache["check_set"] = (x, ref.astype(np.float32))
        return cached  # type: ignore[no-any-return]

    def once(self, key: str, build: Callable[[], bytes]) -> bytes:
        """``build()`` once per export; later calls reuse its bytes, or re-raise its failure."""
        cached = self.cache.get(key)
        if isinstance(cached, Exception):
            raise cached
        if cached is None:
            try:
                cached = build()
            except EdgekitError as exc:
                self.cache[key] = exc
                raise
            self.cache[key] = cached
        return bytes(cached)

    def sample_input(self) -> torch.Tensor:
        """A deterministic example input for tracing: the first calibration sample, else zeros."""
        import torch

        if self.calibration is not None and len(self.calibration):
            return torch.from_numpy(np.ascontiguousarray(self.calibration[:1]))
        return torch.zeros(self.input_spec.shape, dtype=torch.float32)

    def calibration_batches(self) -> list[np.ndarray]:
        """Calibration samples as a list of model-shaped (batch 1) arrays."""
        if self.calibration is None or not len(self.calibration):
            raise UsageError("this variant needs calibration data: pass --calib DIR")
        return [self.calibration[i : i + 1] for i in range(len(self.calibration))]


@dataclass(frozen=True)
class VariantFlag:
    """A boolean ``edgekit export`` option that switches variants on (``--int8``, ``--onnx``...)."""

    name: str
    help: str

    @property
    def option(self) -> str:
        """The command-line spelling, e.g. ``--int8-dynamic``."""
        return "--" + self.name.replace("_", "-")


_REGISTRY: dict[str, VariantInfo] = {}
_FLAGS: dict[str, VariantFlag] = {}
_MODULES = ("edgekit.exporters.tflite", "edgekit.exporters.onnx", "edgekit.exporters.executorch")


def register(
    name: str,
    *,
    format: str,
    precision: str,
    suffix: str,
    needs_calibration: bool = False,
    description: str = "",
    flags: tuple[str, ...] = (),
) -> Callable[[Callable[[ExportContext], bytes]], Callable[[ExportContext], bytes]]:
    """Decorator that adds an exporter function to the registry under ``name``.

    ``flags`` names the declared CLI flags that select it (all of them must be on).
    """

    def deco(fn: Callable[[ExportContext], bytes]) -> Callable[[ExportContext], bytes]:
        if name in _REGISTRY:
            raise RuntimeError(f"variant {name!r} registered twice")
        _REGISTRY[name] = VariantInfo(
            name, format, precision, suffix, needs_calibration, description or (fn.__doc__ or "").strip(), fn,
            tuple(flags),
        )  # fmt: skip
        return fn

    return deco


def declare_flag(name: str, help: str) -> None:
    """Declare a boolean export option (``name`` in snake_case) that variants can be selected by."""
    if name in _FLAGS:
        raise RuntimeError(f"flag {name!r} declared twice")
    _FLAGS[name] = VariantFlag(name, help)


def flags() -> dict[str, VariantFlag]:
    """Every declared variant flag, in declaration order."""
    _load_all()
    return dict(_FLAGS)


def variants_for(enabled: set[str]) -> tuple[str, ...]:
    """The variants whose flags are all in ``enabled``, in registration order."""
    return tuple(n for n, v in available().items() if set(v.flags) <= enabled)


def _load_all() -> None:
    for mod in _MODULES:
        importlib.import_module(mod)


def available() -> dict[str, VariantInfo]:
    """Every registered variant by name, in registration order."""
    _load_all()
    return dict(_REGISTRY)


def get_variant(name: str) -> VariantInfo:
    """The registered variant ``name``; a UsageError lists the valid ones."""
    variants = available()
    if name not in variants:
        raise UsageError(f"unknown variant {name!r}; choose from {', '.join(variants)}")
    return variants[name]
