"""`edgekit export`: PyTorch -> TFLite/ONNX variants, each checked against the PyTorch reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgekit.cli.app import UI, run_guarded
from edgekit.errors import UsageError

if TYPE_CHECKING:
    from edgekit.manifest import Manifest
    from edgekit.spec import ExportSpec, ModelSource, Tolerance


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


def _parse_tolerances(items: list[str]) -> dict[str, Tolerance]:
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


def _variants(
    fp16: bool,
    int8: bool,
    int8_dynamic: bool,
    int8_io: bool,
    onnx: bool,
    recipe: Path | None,
    sparse: bool = False,
) -> tuple[str, ...]:
    names = ["tflite_fp32"]
    if fp16:
        names.append("tflite_fp16")
    if int8:
        names.append("tflite_int8")
    if int8_io:
        names.append("tflite_int8_io")
    if int8_dynamic:
        names.append("tflite_int8_dynamic")
    if recipe is not None:
        names.append("tflite_recipe")
    if sparse:
        names += ["tflite_sparse_fp32", "tflite_sparse_fp16", "tflite_sparse_int8w"]
    if onnx:
        names.append("onnx_fp32")
        if fp16:
            names.append("onnx_fp16")
        if int8:
            names.append("onnx_int8")
    return tuple(names)


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
    try:
        kwargs = json.loads(arch_kwargs) if arch_kwargs else {}
    except ValueError as exc:
        raise UsageError(f"--arch-kwargs is not valid JSON: {exc}") from None
    if not isinstance(kwargs, dict):
        raise UsageError("--arch-kwargs must be a JSON object like '{\"num_classes\": 1}'")
    return ModelSource(path=path, arch=arch, arch_kwargs=kwargs, trust_pickle=trust_pickle)


def _build_spec(**kw: Any) -> ExportSpec:
    from edgekit.spec import ExportSpec, Layout, OutputKind, OutputSpec

    source = model_source(kw["model"], kw["weights"], kw["arch"], kw["arch_kwargs"], kw["trust_pickle"])
    path = source.path
    try:
        layout, kind = Layout(kw["layout"].lower()), OutputKind(kw["output"].lower())
    except ValueError:
        raise UsageError("--layout must be nchw or nhwc and --output logits or probs") from None
    shape = parse_shape(kw["input_shape"])
    return ExportSpec(
        source=source,
        out_dir=kw["out"],
        variants=_variants(
            kw["fp16"], kw["int8"], kw["int8_dynamic"], kw["int8_io"], kw["onnx"], kw["recipe"], kw["sparse"]
        ),
        input_shape=shape,
        layout=layout,
        output=OutputSpec(kind=kind),
        mean=parse_floats(kw["mean"], "--mean"),
        std=parse_floats(kw["std"], "--std"),
        resize=kw["resize"],
        calib_dir=kw["calib"],
        calib_samples=kw["calib_samples"],
        parity_dir=kw["parity_data"],
        parity_samples=kw["parity_samples"],
        seed=kw["seed"],
        threshold=kw["threshold"],
        tolerances=_parse_tolerances(kw["tol"]),
        recipe=kw["recipe"],
        name=kw["name"] or _default_name(path, kw["arch"]),
    )


def _default_name(path: Path | None, arch: str | None) -> str:
    if path is not None:
        return Path(path).stem or "model"
    return (arch or "model").rpartition(":")[2] or "model"


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return format(value, spec)


def summary_table(manifest: Manifest) -> Table:
    """The per-variant table: size, parity, delegation and verdict (reasons are listed below it)."""
    from edgekit.exporters.sparsity import sparsity_label

    table = Table(title=f"edgekit export: {manifest.name}", title_justify="left")
    for col in ("variant", "MB", "xFP32", "max diff", "flips", "SQNR", "AUC", "XNNPACK", "sparse", "verdict"):
        table.add_column(
            col,
            justify="left" if col in ("variant", "verdict", "XNNPACK", "sparse") else "right",
            no_wrap=True,
        )
    fp32 = next((v.size_bytes for v in manifest.variants if v.name == "tflite_fp32" and v.size_bytes), None)
    for v in manifest.variants:
        if v.status != "ok" or v.parity is None:
            table.add_row(v.name, "-", "-", "-", "-", "-", "-", "-", "-", "[red]failed[/]")
            continue
        p = v.parity
        ratio = f"{v.size_bytes / fp32:.2f}" if fp32 and v.size_bytes else "-"
        deleg = "-"
        if v.delegation:
            d = v.delegation
            deleg = (
                "full" if d["fully_delegated"] else f"{d['partitions']}p+{sum(d['undelegated'].values())}cpu"
            )
        table.add_row(
            v.name,
            f"{(v.size_bytes or 0) / 1e6:.2f}",
            ratio,
            _fmt(p["max_abs_diff"], ".1e"),
            f"{p['flips']}/{p['samples']}",
            _fmt(p["sqnr_db"], ".1f"),
            _fmt(v.auc, ".4f"),
            deleg,
            sparsity_label(v.sparsity),
            "[green]pass[/]" if p["passed"] else "[red]FAIL[/]",
        )
    return table


def problem_lines(manifest: Manifest) -> list[str]:
    """One line per failed variant or parity miss, and per partly delegated TFLite variant."""
    lines: list[str] = []
    for v in manifest.variants:
        if v.status != "ok":
            lines.append(f"{v.name}: export failed: {v.error}")
        elif v.parity and not v.parity["passed"]:
            lines.append(f"{v.name}: parity: " + "; ".join(v.parity["reasons"]))
        if v.delegation and not v.delegation["fully_delegated"]:
            ops = ", ".join(f"{k} x{n}" for k, n in v.delegation["undelegated"].items())
            lines.append(
                f"{v.name}: XNNPACK took {v.delegation['partitions']} partition(s); on plain CPU kernels: {ops or 'none'}"
            )
        if v.sparsity and v.sparsity["sparse_tensors"] and v.sparsity["verdict"] != "eligible":
            hint = "; ".join(v.sparsity["suggestions"])
            lines.append(
                f"{v.name}: not eligible for XNNPACK sparse inference: {v.sparsity['reason']}"
                + (f" ({hint})" if hint else "")
            )
    return lines


def export(
    model: Path | None = typer.Argument(
        None, help="Model file: .pt2 (safe default), or a .pt/.pth state dict with --arch."
    ),
    out: Path = typer.Option(Path("out"), "--out", "-o", help="Output folder (created)."),
    fp16: bool = typer.Option(False, "--fp16", help="Add float16-weight variants."),
    int8: bool = typer.Option(False, "--int8", help="Add static INT8 variants (needs --calib)."),
    int8_dynamic: bool = typer.Option(
        False, "--int8-dynamic", help="Add a dynamic-range INT8 TFLite variant."
    ),
    int8_io: bool = typer.Option(
        False, "--int8-io", help="Add a static INT8 TFLite variant with int8 input/output."
    ),
    sparse: bool = typer.Option(
        False,
        "--sparse",
        help="Add sparse-storage TFLite variants (FP32, FP16, INT8 weight-only) of a pruned model.",
    ),
    onnx: bool = typer.Option(False, "--onnx", help="Also export ONNX (FP32; FP16/INT8 with --fp16/--int8)."),
    recipe: Path | None = typer.Option(
        None, "--recipe", help="ai-edge-quantizer recipe JSON (e.g. INT4/INT8 mixed)."
    ),
    calib: Path | None = typer.Option(
        None, "--calib", help="Calibration images or .npy/.npz (searched recursively)."
    ),
    calib_samples: int = typer.Option(200, "--calib-samples", help="Calibration samples to use."),
    parity_data: Path | None = typer.Option(
        None, "--parity-data", help="Parity inputs (default: held out from --calib)."
    ),
    parity_samples: int = typer.Option(64, "--parity-samples", help="Parity samples."),
    seed: int = typer.Option(0, "--seed", help="Seed of the deterministic sampling."),
    arch: str | None = typer.Option(None, "--arch", help="module.path:factory that builds the nn.Module."),
    arch_kwargs: str | None = typer.Option(
        None, "--arch-kwargs", help="JSON object of factory keyword arguments."
    ),
    weights: Path | None = typer.Option(None, "--weights", help="State dict / checkpoint for --arch."),
    trust_pickle: bool = typer.Option(
        False, "--trust-pickle", help="Allow unpickling a whole nn.Module (runs code)."
    ),
    input_shape: str | None = typer.Option(None, "--input-shape", help="NCHW shape, e.g. 1x3x224x224."),
    layout: str = typer.Option(
        "nchw", "--layout", help="TFLite input layout: nchw or nhwc (Android-friendly)."
    ),
    output: str = typer.Option("logits", "--output", help="What the model returns: logits or probs."),
    mean: str | None = typer.Option(
        None, "--mean", help="Per-channel mean after scaling to [0,1] (default ImageNet)."
    ),
    std: str | None = typer.Option(None, "--std", help="Per-channel std (default ImageNet)."),
    resize: str = typer.Option("bilinear", "--resize", help="bilinear, bicubic or nearest."),
    threshold: float = typer.Option(0.5, "--threshold", help="Decision threshold on the fake score."),
    tol: list[str] = typer.Option(
        [], "--tol", help="Override a tolerance: PRECISION:KEY=VALUE (repeatable)."
    ),
    name: str | None = typer.Option(
        None, "--name", help="Stem of the output file names (default: the model's)."
    ),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 if any variant fails export or parity."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON on stdout."),
) -> None:
    """Convert a PyTorch detector to TFLite (FP32/FP16/INT8) and ONNX, and check each against PyTorch."""
    params = dict(locals())
    from edgekit.export import export as run_export

    ui = UI.current()
    spec = run_guarded(ui, lambda: _build_spec(**params))
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=ui.err,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=1)

        def progress(msg: str, done: int, total: int) -> None:
            bar.update(task, description=msg, completed=done, total=total)

        manifest = run_guarded(ui, lambda: run_export(spec, progress))
    if as_json:
        ui.out.print_json(manifest.to_json())
    else:
        ui.err.print(summary_table(manifest))
        for v in manifest.variants:
            if v.sparsity and v.sparsity.get("applied"):
                ui.err.print(
                    f"  {v.name}: " + "; ".join(v.sparsity["applied"]), highlight=False, soft_wrap=True
                )
        for line in problem_lines(manifest):
            ui.err.print(f"  [yellow]![/] {line}", highlight=False, soft_wrap=True)
        ui.err.print(f"manifest: {Path(spec.out_dir) / 'manifest.json'}", highlight=False)
    if strict and not manifest.all_passed:
        failed = [v.name for v in manifest.variants if not v.passed]
        ui.err.print(f"[red]--strict: {len(failed)} variant(s) failed: {', '.join(failed)}[/]")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command("export")(export)
