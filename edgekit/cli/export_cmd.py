"""`edgekit export`: PyTorch -> TFLite/ONNX variants, each checked against the PyTorch reference."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from edgekit.cli._options import (
    FACE_CROP_HELP,
    FACE_MARGIN,
    FACE_MARGIN_HELP,
    face_crop,
    model_source,
    parse_floats,
    parse_shape,
    parse_tolerances,
)
from edgekit.cli._ui import UI, paint, run_guarded
from edgekit.errors import UsageError

if TYPE_CHECKING:
    from edgekit.manifest import Manifest
    from edgekit.spec import ExportSpec


def _build_spec(**kw: Any) -> ExportSpec:
    from edgekit.exporters import variants_for
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
        variants=variants_for(kw["flags_on"] | ({"recipe"} if kw["recipe"] is not None else set())),
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
        tolerances=parse_tolerances(kw["tol"]),
        recipe=kw["recipe"],
        name=kw["name"] or _default_name(path, kw["arch"]),
        output_index=kw["output_index"],
        int8_repair=not kw["no_int8_repair"],
        int8_effort=kw["int8_effort"],
        arm64=kw["arm64"],
        face_crop=face_crop(kw["face_crop"], kw["face_margin"]),
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
    # host and arm64 parity side by side; the max difference and the rest are in the manifest
    cols = ("variant", "MB", "xFP32", "host", "dB", "arm64", "dB", "AUC", "XNNPACK",
            "sparse", "verdict")  # fmt: skip
    for col in cols:
        table.add_column(
            col,
            justify="left" if col in ("variant", "verdict", "XNNPACK", "sparse") else "right",
            no_wrap=True,
        )
    fp32 = next((v.size_bytes for v in manifest.variants if v.name == "tflite_fp32" and v.size_bytes), None)
    for v in manifest.variants:
        if v.status != "ok" or v.parity is None:
            table.add_row(v.name, *["-"] * (len(cols) - 2), paint("failed", "red"))
            continue
        p = v.parity_host or v.parity
        arm = (v.arm64 or {}).get("parity")
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
            f"{p['flips']}/{p['samples']}",
            _fmt(p["sqnr_db"], ".1f"),
            f"{arm['flips']}/{arm['samples']}" if arm else "-",
            _fmt(arm["sqnr_db"], ".1f") if arm else "-",
            _fmt(v.auc, ".4f"),
            deleg,
            sparsity_label(v.sparsity),
            paint("pass", "green") if v.parity["passed"] else paint("FAIL", "red"),
        )
    return table


def preprocess_line(manifest: Manifest) -> str:
    """Where the preprocessing came from, in one line (an assumed one says so)."""
    p = manifest.preprocess
    what = f"{p['height']}x{p['width']} {p['resize']}, mean {tuple(p['mean'])}, std {tuple(p['std'])}"
    return {
        "model": f"preprocessing: from the model file ({what})",
        "flags": f"preprocessing: from the command line ({what})",
        "assumed": f"preprocessing: assumed ImageNet normalisation ({what}); nothing in the model says how its "
        "inputs are normalised: pass --mean/--std, or store them with edgekit.save_pt2",
    }.get(manifest.preprocess_source, f"preprocessing: {what}")


def repair_line(name: str, repair: dict[str, Any]) -> str | None:
    """What the INT8 repair search did, when it had to do anything."""
    attempts = repair.get("attempts") or []
    overflow = repair.get("bias_overflow") or []
    if overflow:
        return (f"{name}: the int32 bias of {', '.join(overflow)} overflowed (its input is nearly constant, so its "
                "INT8 scale is tiny and bias / scale does not fit int32); check that the model reacts to its "
                "input (random or untrained weights?)")  # fmt: skip
    if not attempts or (attempts[0].get("passed") and len(attempts) == 1):
        return None
    chosen = next((a for a in attempts if a["step"] == repair.get("chosen")), attempts[-1])
    where = ", ".join(
        f"{o['layer']} ({o['op']}, {o['sqnr_db']:.1f} dB)" for o in repair.get("offenders") or []
    )
    kept = ", ".join((repair.get("changes") or {}).get("float_layers") or [])
    step = f"{chosen['step']} ({kept})" if kept and "fallback" in chosen["step"] else chosen["step"]
    measured = f"{chosen['flips']}/{chosen['samples']} flips, {chosen['sqnr_db']:.1f} dB on {repair.get('check_set')}"
    if repair.get("passed"):
        return f"{name}: INT8 repaired by {step} ({measured})"
    diagnosis = repair.get("diagnosis")
    if isinstance(diagnosis, dict) and isinstance(diagnosis.get("why"), str):
        return f"{name}: {diagnosis['why']}"
    aim = repair.get("aim") or {}
    goal = f"0 flips and {aim.get('min_sqnr_db', 25):.0f} dB" if aim else "the tolerance"
    return (f"{name}: no repair step reached {goal} (best: {step}, {measured}); layers whose INT8 weights "
            f"alone cost the output most (output SQNR with only that layer at INT8): {where or 'none found'}")  # fmt: skip


def judged_line(manifest: Manifest) -> str | None:
    """Where parity was judged, when it was on the phone's kernels (information, not a problem)."""
    from edgekit.arm64.check import FLOAT_SAMPLES

    arm64 = (manifest.target or {}).get("arm64")
    if not arm64:
        return None
    return (f"parity judged on the phone's kernels, {arm64['runtime']}: integer variants on every parity sample "
            f"there, float variants on the host's and on the first {FLOAT_SAMPLES} there")  # fmt: skip


def target_lines(manifest: Manifest) -> list[str]:
    """What to know about where parity was judged: no arm64 environment, or kernels that disagree."""
    from edgekit.arm64.check import disagreement
    from edgekit.exporters.onnx import saturating_host

    target = manifest.target or {}
    lines: list[str] = []
    if target and not target.get("arm64"):
        lines.append(f"arm64: {target.get('why', 'not used')}")
        saturating = saturating_host()
        if saturating and any(v.format == "onnx" and v.precision == "int8" for v in manifest.variants):
            lines.append(f"onnx_int8: {saturating}, so its parity here is not the phone's; build the arm64 "
                         "environment (make arm64) to judge it on ARM kernels")  # fmt: skip
    for v in manifest.variants:
        if v.parity_host and v.arm64:
            line = disagreement(v.name, v.parity_host, v.arm64)
            if line:
                lines.append(line)
        if v.arm64 and ("error" in v.arm64 or "skipped" in v.arm64):
            lines.append(f"{v.name}: arm64: {v.arm64.get('error') or v.arm64.get('skipped')}")
    return lines


def problem_lines(manifest: Manifest) -> list[str]:
    """One line per failed variant or parity miss, and per partly delegated TFLite variant."""
    lines: list[str] = target_lines(manifest)
    for v in manifest.variants:
        line = repair_line(v.name, v.repair) if v.repair else None
        if line:
            lines.append(line)
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


# rich help panels
_MODEL, _VARIANTS, _CALIB, _PARITY, _OUTPUT = "Model", "Variants", "Calibration", "Parity", "Output"


def export(
    flags_on: set[str],
    model: Path | None = typer.Argument(
        None,
        help="Model file: .pt2 (safe default), or a .pt/.pth state dict with --arch.",
        show_default=False,
    ),
    out: Path = typer.Option(
        Path("out"), "--out", "-o", help="Output folder (created).", rich_help_panel=_OUTPUT
    ),
    recipe: Path | None = typer.Option(
        None,
        "--recipe",
        help="ai-edge-quantizer recipe JSON (e.g. INT4/INT8 mixed).",
        rich_help_panel=_VARIANTS,
    ),
    calib: Path | None = typer.Option(
        None,
        "--calib",
        help="Calibration images or .npy/.npz (searched recursively).",
        rich_help_panel=_CALIB,
    ),
    calib_samples: int = typer.Option(
        200, "--calib-samples", help="Calibration samples to use.", rich_help_panel=_CALIB
    ),
    parity_data: Path | None = typer.Option(
        None, "--parity-data", help="Parity inputs (default: held out from --calib).", rich_help_panel=_PARITY
    ),
    parity_samples: int = typer.Option(
        256,
        "--parity-samples",
        help="Parity samples (enough that a 1% flip tolerance means something).",
        rich_help_panel=_PARITY,
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the deterministic sampling.", rich_help_panel=_CALIB),
    arch: str | None = typer.Option(
        None, "--arch", help="module.path:factory that builds the nn.Module.", rich_help_panel=_MODEL
    ),
    arch_kwargs: str | None = typer.Option(
        None, "--arch-kwargs", help="JSON object of factory keyword arguments.", rich_help_panel=_MODEL
    ),
    weights: Path | None = typer.Option(
        None, "--weights", help="State dict / checkpoint for --arch.", rich_help_panel=_MODEL
    ),
    trust_pickle: bool = typer.Option(
        False,
        "--trust-pickle",
        metavar="",
        help="Allow unpickling a whole nn.Module (runs code).",
        rich_help_panel=_MODEL,
    ),
    input_shape: str | None = typer.Option(
        None, "--input-shape", help="NCHW shape, e.g. 1x3x224x224.", rich_help_panel=_MODEL
    ),
    no_int8_repair: bool = typer.Option(
        False,
        "--no-int8-repair",
        metavar="",
        help="Plain INT8 (min/max ranges) even when it misses its tolerance; no repair search.",
        rich_help_panel=_VARIANTS,
    ),
    int8_effort: float = typer.Option(
        600.0,
        "--int8-effort",
        help="Seconds per INT8 variant the learned repair (learned rounding) may spend; 0: none.",
        rich_help_panel=_VARIANTS,
    ),
    layout: str = typer.Option(
        "nchw",
        "--layout",
        help="TFLite input layout: nchw or nhwc (Android-friendly).",
        rich_help_panel=_VARIANTS,
    ),
    output: str = typer.Option(
        "logits", "--output", help="What the model returns: logits or probs.", rich_help_panel=_MODEL
    ),
    output_index: int | None = typer.Option(
        None,
        "--output-index",
        help="Which output is the score, for a model returning several.",
        rich_help_panel=_MODEL,
    ),
    mean: str | None = typer.Option(
        None,
        "--mean",
        help="Per-channel mean after scaling to [0,1] (default ImageNet).",
        rich_help_panel=_MODEL,
    ),
    std: str | None = typer.Option(
        None, "--std", help="Per-channel std (default ImageNet).", rich_help_panel=_MODEL
    ),
    resize: str | None = typer.Option(
        None,
        "--resize",
        help="bilinear, bicubic or nearest (default: the model's, else bilinear).",
        rich_help_panel=_MODEL,
    ),
    face_crop: bool = typer.Option(
        False, "--face-crop", metavar="", help=FACE_CROP_HELP, rich_help_panel=_MODEL
    ),
    face_margin: float = typer.Option(
        FACE_MARGIN, "--face-margin", help=FACE_MARGIN_HELP, rich_help_panel=_MODEL
    ),
    threshold: float = typer.Option(
        0.5, "--threshold", help="Decision threshold on the fake score.", rich_help_panel=_PARITY
    ),
    tol: list[str] = typer.Option(
        [], "--tol", help="Override a tolerance: PRECISION:KEY=VALUE (repeatable).", rich_help_panel=_PARITY
    ),
    name: str | None = typer.Option(
        None, "--name", help="Stem of the output file names (default: the model's).", rich_help_panel=_OUTPUT
    ),
    strict: bool = typer.Option(
        False,
        "--strict",
        metavar="",
        help="Exit 1 if any variant fails export or parity.",
        rich_help_panel=_PARITY,
    ),
    as_json: bool = typer.Option(
        False, "--json", metavar="", help="Print the manifest as JSON on stdout.", rich_help_panel=_OUTPUT
    ),
    arm64: str = typer.Option(
        "auto",
        "--arm64",
        help="Parity on the phone's kernels too (arm64 under qemu; the verdict is theirs): "
        "auto (when 'make arm64' built it), on (required), off.",
        rich_help_panel=_PARITY,
    ),
) -> None:
    """Convert a PyTorch detector to TFLite (FP32/FP16/INT8) and ONNX, and check each against PyTorch."""
    params = dict(locals())
    from edgekit.exporting import export as run_export

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
            ui.err.print(Text.assemble(("  !", "yellow"), f" {line}"), highlight=False, soft_wrap=True)
        judged = judged_line(manifest)
        if judged:
            ui.err.print(judged, highlight=False, soft_wrap=True)
        ui.err.print(preprocess_line(manifest), highlight=False, soft_wrap=True)
        if manifest.binary:
            exact = manifest.binary.get("int8_exact")
            said = manifest.binary["statement"] + (f"; {exact}" if exact else "")
            ui.err.print(paint(f"binary layers: {said}", "cyan"), soft_wrap=True)
        for line in manifest.reference.get("warnings") or []:
            ui.err.print(
                Text.assemble(("warning:", "bold yellow"), f" {line}"), highlight=False, soft_wrap=True
            )
        ui.err.print(f"manifest: {Path(spec.out_dir) / 'manifest.json'}", highlight=False)
    warned = manifest.reference.get("warnings") or []
    if strict and (not manifest.all_passed or warned):
        failed = [v.name for v in manifest.variants if not v.passed]
        why = (
            f"{len(failed)} variant(s) failed: {', '.join(failed)}" if failed else f"{len(warned)} warning(s)"
        )
        ui.err.print(f"--strict: {why}", style="red")
        raise typer.Exit(1)


def _with_variant_flags(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with one boolean option per variant flag the exporter registry declares.

    The flags are not written out here: a new exporter that declares ``--executorch``
    gets its option without a change to this module.
    """
    from edgekit.exporters import flags

    declared = flags()
    sig = inspect.signature(command, eval_str=True)
    fixed = [p for p in sig.parameters.values() if p.name != "flags_on"]
    extra = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(
                False, f.option, help=f.help, rich_help_panel=_VARIANTS, show_default=False, metavar=""
            ),
            annotation=bool,
        )
        for f in declared.values()
    ]
    panels = (_MODEL, _VARIANTS, _CALIB, _PARITY, _OUTPUT)

    def rank(p: inspect.Parameter) -> int:
        panel = getattr(p.default, "rich_help_panel", None)
        return panels.index(panel) if panel in panels else -1  # the MODEL argument first

    ordered = sorted([*fixed[:1], *extra, *fixed[1:]], key=rank)  # stable: declaration order per panel

    @functools.wraps(command)
    def wrapper(**kw: Any) -> None:
        on = {n for n in declared if kw.pop(n)}
        command(on, **kw)

    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in ordered]
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    del wrapper.__wrapped__  # typer must read the signature above, not the template's
    return wrapper


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command("export")(_with_variant_flags(export))
