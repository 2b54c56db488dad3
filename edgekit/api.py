"""The Python API: one function per job, the CLI is a thin layer over the same library.

```python
import edgekit
result = edgekit.export(model, example_input=torch.randn(1, 3, 224, 224),
                        variants=["fp16", "int8"], calib="data/calib", out_dir="out/")
result.variants["tflite_int8"].parity.flips
report = edgekit.evaluate("out/", data="data/val", out_dir="out/report")
bench = edgekit.bench("out/", device="emulator")
best = edgekit.optimize(model, calib="data/calib", data="data/val", max_auc_drop=0.01, out_dir="opt/")
```

``model`` is a ``torch.nn.Module``, a ``torch.export.ExportedProgram`` or a path (``.pt2``,
or a state dict with ``arch=``). An in-memory model is saved as ``<name>.pt2`` in the output
folder first, so the export folder holds the PyTorch baseline that ``evaluate`` compares
with. Functions never print: progress goes to ``progress(message)`` when given, and every
error is an :class:`edgekit.errors.EdgekitError`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import ModelLoadError, UsageError
from edgekit.modelmeta import save_pt2
from edgekit.validate import read_json

if TYPE_CHECKING:
    from edgekit.compress.optimize import OptimizeResult
    from edgekit.device.bench import BenchReport
    from edgekit.evaluation.results import EvalMeta
    from edgekit.manifest import Manifest
    from edgekit.parity import ParityResult
    from edgekit.runners.base import Delegation
    from edgekit.spec import Tolerance

PathLike = str | Path
Progress = Callable[[str], None]

__all__ = [
    "EvalResult",
    "ExportResult",
    "VariantResult",
    "bench",
    "evaluate",
    "export",
    "optimize",
    "save_pt2",
]


@dataclass(frozen=True)
class VariantResult:
    """One exported variant: its file, size and parity against PyTorch (the manifest's data, typed)."""

    name: str
    file: Path | None
    format: str
    precision: str
    status: str
    size_bytes: int | None
    sha256: str | None
    parity: ParityResult | None
    auc: float | None
    delegation: Delegation | None
    error: str | None
    #: the host kernels' parity, and the arm64 kernels' (None without the arm64 environment);
    #: ``parity`` is the verdict, judged where ``judged_on`` says
    parity_host: ParityResult | None = None
    parity_arm64: ParityResult | None = None
    judged_on: str = "host"

    @property
    def passed(self) -> bool:
        """Exported and within its parity tolerance."""
        return self.status == "ok" and self.parity is not None and self.parity.passed


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote: the manifest and one typed result per variant."""

    out_dir: Path
    manifest: Manifest
    variants: dict[str, VariantResult] = field(default_factory=dict)

    @property
    def all_passed(self) -> bool:
        """Every variant exported and passed parity."""
        return all(v.passed for v in self.variants.values())


@dataclass(frozen=True)
class EvalResult:
    """What :func:`evaluate` wrote: the eval metadata, the metrics and the report files."""

    out_dir: Path
    meta: EvalMeta
    metrics: dict[str, Any]
    report_html: Path


def _say(progress: Progress | None) -> Callable[..., None]:
    if progress is None:
        return lambda *_a: None
    return lambda msg, *_rest: progress(str(msg))


def _variant_names(variants: Sequence[str] | str) -> tuple[str, ...]:
    """Short flag names ("fp16", "int8", "onnx"...) or full variant names, to the registry's variants."""
    from edgekit.exporters import available, flags, variants_for

    if isinstance(variants, str):
        variants = [variants]
    known, declared = available(), flags()
    full = [v for v in variants if v in known]
    short = {v for v in variants if v not in known}
    unknown = sorted(short - set(declared) - {"recipe"})
    if unknown:
        raise UsageError(
            f"unknown variant {unknown[0]!r}; use {', '.join(declared)} or a variant name ({', '.join(known)})"
        )
    picked = set(variants_for(short)) | set(full) | {"tflite_fp32"}
    return tuple(n for n in known if n in picked)


def _model_file(model: Any, example_input: Any, out_dir: Path, name: str) -> Path:
    """An in-memory model saved as ``out_dir/<name>.pt2`` (torch.export); a path is returned as it is."""
    if isinstance(model, (str, Path)):
        return Path(model)
    import torch

    from edgekit._capture import captured_output
    from edgekit._io import atomic_write_bytes, ensure_output_dir

    if isinstance(model, torch.export.ExportedProgram):
        program = model
    elif isinstance(model, torch.nn.Module):
        if example_input is None:
            raise UsageError(
                "an nn.Module needs example_input (e.g. torch.randn(1, 3, 224, 224)) to be exported"
            )
        example = example_input if isinstance(example_input, tuple) else (example_input,)
        was_training = model.training
        model.eval()
        try:
            with captured_output():
                program = torch.export.export(model, example, strict=False)
        except Exception as exc:
            raise ModelLoadError(
                f"torch.export could not capture the model ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                "check example_input's shape"
            ) from exc
        finally:
            model.train(was_training)
    else:
        raise UsageError(
            f"model must be an nn.Module, an ExportedProgram or a path, not {type(model).__name__}"
        )
    buf = io.BytesIO()
    torch.export.save(program, buf)
    target = ensure_output_dir(out_dir) / f"{name}.pt2"
    atomic_write_bytes(target, buf.getvalue())
    return target


def _typed_variants(manifest: Manifest, out_dir: Path) -> dict[str, VariantResult]:
    from edgekit.parity import ParityResult
    from edgekit.runners.base import Delegation

    out = {}
    for v in manifest.variants:
        deleg = None
        if v.delegation:
            d = v.delegation
            deleg = Delegation(d["partitions"], d["delegated_ops"], d["total_ops"], dict(d["undelegated"]))
        out[v.name] = VariantResult(
            name=v.name,
            file=out_dir / v.file if v.file else None,
            format=v.format,
            precision=v.precision,
            status=v.status,
            size_bytes=v.size_bytes,
            sha256=v.sha256,
            parity=ParityResult.from_dict(v.parity) if v.parity else None,
            auc=v.auc,
            delegation=deleg,
            error=v.error,
            parity_host=ParityResult.from_dict(v.parity_host) if v.parity_host else None,
            parity_arm64=ParityResult.from_dict(v.arm64["parity"])
            if v.arm64 and "parity" in v.arm64
            else None,
            judged_on=v.judged_on,
        )
    return out


def export(
    model: Any,
    *,
    example_input: Any = None,
    variants: Sequence[str] | str = ("fp16", "int8"),
    calib: PathLike | None = None,
    out_dir: PathLike = "out",
    parity_data: PathLike | None = None,
    calib_samples: int = 200,
    parity_samples: int = 256,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    resize: str | None = None,
    layout: str = "nchw",
    output: str = "logits",
    output_index: int | None = None,
    int8_repair: bool = True,
    int8_effort: float = 600.0,
    tolerances: Mapping[str, Tolerance] | None = None,
    arm64: str = "auto",
    face_crop: bool = False,
    face_margin: float = 1.3,
    threshold: float = 0.5,
    recipe: PathLike | None = None,
    arch: str | None = None,
    arch_kwargs: dict[str, Any] | None = None,
    trust_pickle: bool = False,
    name: str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> ExportResult:
    """Export ``model`` to every asked variant, check each against PyTorch, write the manifest.

    ``variants`` takes the CLI's flag names (``fp16``, ``int8``, ``int8_dynamic``, ``int8_io``,
    ``sparse``, ``onnx``) or full variant names (``tflite_int8``); ``tflite_fp32`` is always
    exported. ``mean``/``std`` are per-channel after scaling pixels to [0, 1]. ``arm64``: parity
    on the phone's kernels too, whose verdict counts ("auto" when ``make arm64`` built them, "on", "off").
    ``int8_effort``: seconds per static INT8 variant the learned repair rungs (learned rounding,
    then distillation) may spend when the cheap ones miss; 0 skips them. ``tolerances``: per
    precision (``fp32``, ``fp16``, ``int8``, ``mixed``), the parity bar replacing the default (the
    CLI's ``--tol``); the INT8 repair aims at the ``int8`` one.
    """
    from edgekit.exporting import export as run_export
    from edgekit.spec import (
        DEFAULT_TOLERANCES,
        ExportSpec,
        FaceCrop,
        Layout,
        ModelSource,
        OutputKind,
        OutputSpec,
    )

    out = Path(out_dir)
    stem = name or (Path(model).stem if isinstance(model, (str, Path)) else "model")
    path = _model_file(model, example_input, out, stem)
    shape = tuple(int(d) for d in example_input.shape) if example_input is not None else None
    names = _variant_names(list(variants) + (["recipe"] if recipe is not None else []))
    try:
        lay, kind = Layout(layout.lower()), OutputKind(output.lower())
    except ValueError:
        raise UsageError("layout must be nchw or nhwc and output logits or probs") from None
    spec = ExportSpec(
        source=ModelSource(
            path=path, arch=arch, arch_kwargs=dict(arch_kwargs or {}), trust_pickle=trust_pickle
        ),
        out_dir=out,
        variants=names,
        input_shape=shape if shape and len(shape) == 4 else None,
        layout=lay,
        output=OutputSpec(kind=kind),
        mean=_triple(mean, "mean"),
        std=_triple(std, "std"),
        resize=resize,
        calib_dir=Path(calib) if calib is not None else None,
        calib_samples=calib_samples,
        parity_dir=Path(parity_data) if parity_data is not None else None,
        parity_samples=parity_samples,
        seed=seed,
        threshold=threshold,
        recipe=Path(recipe) if recipe is not None else None,
        name=stem,
        output_index=output_index,
        int8_repair=int8_repair,
        int8_effort=int8_effort,
        tolerances={**DEFAULT_TOLERANCES, **_tolerances(tolerances)},
        arm64=arm64,
        face_crop=FaceCrop(margin=face_margin) if face_crop else None,
    )
    manifest = run_export(spec, _say(progress))
    return ExportResult(out, manifest, _typed_variants(manifest, out))


def _tolerances(given: Mapping[str, Tolerance] | None) -> dict[str, Tolerance]:
    from edgekit.spec import DEFAULT_TOLERANCES, Tolerance

    out = dict(given or {})
    for precision, tol in out.items():
        if precision not in DEFAULT_TOLERANCES or not isinstance(tol, Tolerance):
            raise UsageError(
                f"tolerances[{precision!r}] must be an edgekit.spec.Tolerance for one of "
                f"{', '.join(DEFAULT_TOLERANCES)}"
            )
    return out


def _triple(values: Sequence[float] | None, what: str) -> tuple[float, float, float] | None:
    if values is None:
        return None
    vals = [float(v) for v in values]
    if len(vals) == 1:
        vals *= 3
    if len(vals) != 3:
        raise UsageError(f"{what} takes 1 or 3 values, got {len(vals)}")
    return (vals[0], vals[1], vals[2])


def evaluate(
    export_dir: PathLike,
    data: PathLike,
    out_dir: PathLike = "report",
    *,
    frames: int = 16,
    video_agg: str = "mean",
    threshold: float | str = 0.5,
    tolerance: float = 0.01,
    max_acc_drop: float = 0.02,
    max_f1_drop: float = 0.02,
    max_flip_rate: float = 0.01,
    top_k: int = 5,
    variants: Sequence[str] | None = None,
    heatmaps: bool = True,
    trust_pickle: bool = False,
    baseline: PathLike | None = None,
    arch: str | None = None,
    arch_kwargs: dict[str, Any] | None = None,
    face_crop: bool = False,
    face_margin: float = 1.3,
    resume: bool = False,
    chunk: int = 64,
    batch: int = 32,
    ray: str | None = None,
    ray_workers: int = 2,
    progress: Progress | None = None,
) -> EvalResult:
    """Score labelled images/videos with the PyTorch baseline and every variant of an export,
    and write scores, metrics, heatmaps and the compression report into ``out_dir``."""

    from edgekit.evaluation.evaluate import EvalSpec
    from edgekit.evaluation.evaluate import evaluate as run_eval
    from edgekit.evaluation.results import load_eval_meta
    from edgekit.spec import FaceCrop

    spec = EvalSpec(
        export_dir=Path(export_dir), data=Path(data), out_dir=Path(out_dir), frames=frames, video_agg=video_agg,
        threshold=str(threshold), tolerance=tolerance, top_k=top_k, max_acc_drop=max_acc_drop,
        max_f1_drop=max_f1_drop, max_flip_rate=max_flip_rate,
        variants=tuple(variants) if variants else None, trust_pickle=trust_pickle, heatmaps=heatmaps,
        baseline=Path(baseline) if baseline is not None else None, arch=arch, arch_kwargs=dict(arch_kwargs or {}),
        face_crop=FaceCrop(margin=face_margin) if face_crop else None, resume=resume, chunk=chunk, batch=batch,
        ray=ray, ray_workers=ray_workers,
    )  # fmt: skip
    out = run_eval(spec, _say(progress))
    metrics = read_json(out / "metrics.json")
    return EvalResult(out, load_eval_meta(out), metrics, out / "report.html")


def bench(
    target: PathLike,
    device: str | None = "emulator",
    out_dir: PathLike = "bench",
    *,
    adb: str | None = None,
    accelerators: Sequence[str] = ("cpu",),
    threads: Sequence[int] | None = None,
    runs: int = 50,
    warmup: int = 10,
    parity_samples: int | None = None,
    variants: Sequence[str] | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> BenchReport:
    """Benchmark an export folder (or a ``.tflite``) on a phone over ADB, or on the emulated Pixel 9."""
    from edgekit.device.bench import BenchSpec
    from edgekit.device.bench import bench as run_bench

    spec = BenchSpec(
        target=Path(target), out_dir=Path(out_dir), device=device, adb=adb, accelerators=tuple(accelerators),
        threads=tuple(threads) if threads else None, runs=runs, warmup=warmup, parity_samples=parity_samples,
        variants=tuple(variants) if variants else None, resume=resume,
    )  # fmt: skip
    return run_bench(spec, _say(progress))


def optimize(
    model: Any,
    *,
    data: PathLike | None = None,
    calib: PathLike | None = None,
    out_dir: PathLike = "optimize",
    example_input: Any = None,
    max_auc_drop: float = 0.01,
    objective: str = "size",
    sparsity_levels: Sequence[float] = (0.7, 0.8, 0.9),
    prune_steps: int = 150,
    val_samples: int = 500,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    arch: str | None = None,
    device: str | None = None,
    adb: str | None = None,
    progress: Progress | None = None,
) -> OptimizeResult:
    """Search FP16 / INT8 / INT8 + fallback / INT4-mixed / sparse candidates for the smallest (or
    fastest) one within ``max_auc_drop`` of the baseline; ``device`` also times each on a device."""
    from edgekit.compress.optimize import OptimizeSpec
    from edgekit.compress.optimize import optimize as run_optimize
    from edgekit.compress.workspace import ModelData
    from edgekit.spec import ModelSource

    out = Path(out_dir)
    path = _model_file(model, example_input, out, "model")
    shape = tuple(int(d) for d in example_input.shape) if example_input is not None else None
    md = ModelData(
        source=ModelSource(path=path, arch=arch),
        data=Path(data) if data is not None else None,
        calib=Path(calib) if calib is not None else None,
        mean=_triple(mean, "mean"),
        std=_triple(std, "std"),
        input_shape=shape,
    )
    spec = OptimizeSpec(
        model=md, out_dir=out, max_auc_drop=max_auc_drop, objective=objective,
        sparsity_levels=tuple(sparsity_levels), prune_steps=prune_steps, val_samples=val_samples,
    )  # fmt: skip
    timer = None
    if device is not None:
        from edgekit.device.bench import latency_timer

        timer = latency_timer(device, adb, out / "device")
    return run_optimize(spec, _say(progress), device_timer=timer)
