"""`edgekit prune`, `edgekit sensitivity` and `edgekit optimize`: measured compression choices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from edgekit.cli._options import model_source, parse_floats, parse_shape
from edgekit.cli._ui import UI, paint, plain, run_guarded

if TYPE_CHECKING:
    from edgekit.compress.workspace import ModelData

# Options the three commands share (typer option objects are plain metadata, safe to reuse).
_MODEL = typer.Argument(None, help="Model file: .pt2 (safe default), or a .pt/.pth state dict with --arch.")
_DATA = typer.Option(
    None,
    "--data",
    help="Labelled images: real/ and fake/ folders (default: the bundled sample's synthetic data).",
)
_CALIB = typer.Option(None, "--calib", help="Calibration images (default: the training split of --data).")
_MEAN = typer.Option(None, "--mean", help="Per-channel mean after scaling to [0,1].")
_STD = typer.Option(None, "--std", help="Per-channel std.")
_SHAPE = typer.Option(None, "--input-shape", help="NCHW shape for state dicts.")
_ARCH = typer.Option(None, "--arch", help="module.path:factory that builds the nn.Module.")
_ARCH_KWARGS = typer.Option(None, "--arch-kwargs", help="JSON object of factory kwargs.")
_WEIGHTS = typer.Option(None, "--weights", help="State dict / checkpoint for --arch.")
_TRUST = typer.Option(False, "--trust-pickle", metavar="", help="Allow unpickling a whole nn.Module.")


def prune(
    model: Path | None = _MODEL,
    sparsity: float = typer.Option(0.8, "--sparsity", help="Share of zeros in the pruned layers (0-1)."),
    pattern: str = typer.Option(
        "xnnpack", "--pattern", help="xnnpack (1x1 convs + FC), block4 (4-channel blocks) or unstructured."
    ),
    data: Path | None = _DATA,
    steps: int = typer.Option(200, "--steps", help="Fine-tuning steps (sparsity ramps over the first 70%)."),
    batch: int = typer.Option(32, "--batch", help="Fine-tuning batch size."),
    lr: float = typer.Option(3e-4, "--lr", help="Fine-tuning learning rate (AdamW)."),
    out: Path = typer.Option(Path("pruned"), "--out", "-o", help="Output folder (created)."),
    name: str = typer.Option("pruned", "--name", help="Stem of the pruned .pt2."),
    seed: int = typer.Option(0, "--seed", help="Seed of sampling and the validation split."),
    mean: str | None = _MEAN,
    std: str | None = _STD,
    resize: str | None = typer.Option(
        None, "--resize", help="bilinear, bicubic or nearest (default: the model's)."
    ),
    input_shape: str | None = _SHAPE,
    arch: str | None = _ARCH,
    arch_kwargs: str | None = _ARCH_KWARGS,
    weights: Path | None = _WEIGHTS,
    trust_pickle: bool = _TRUST,
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print prune.json on stdout."),
) -> None:
    """Gradual magnitude pruning with short fine-tuning; writes a pruned .pt2 for `export --sparse`."""
    from edgekit.compress.prune import PruneSpec
    from edgekit.compress.prune import prune as run_prune

    ui = UI.current()
    spec = run_guarded(
        ui,
        lambda: PruneSpec(
            source=model_source(model, weights, arch, arch_kwargs, trust_pickle),
            out_dir=out,
            sparsity=sparsity,
            pattern=pattern,
            data=data,
            mean=parse_floats(mean, "--mean"),
            std=parse_floats(std, "--std"),
            resize=resize,
            input_shape=parse_shape(input_shape),
            steps=steps,
            batch=batch,
            lr=lr,
            seed=seed,
            name=name,
        ),
    )
    with ui.err.status("pruning") as status:
        result = run_guarded(
            ui, lambda: run_prune(spec, lambda m, d, t: status.update(plain(f"{m} {d}/{t}")))
        )
    if as_json:
        ui.out.print_json(json.dumps(result.to_dict()))
        return

    def auc(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    ui.err.print(
        f"pruned {len(result.layers)} layers ({result.pattern}) to {result.achieved_sparsity:.1%} zeros in "
        f"{result.seconds:.0f} s\nAUC on {result.data.get('val')} held-out samples: before {auc(result.auc_before)}, "
        f"pruned without fine-tuning {auc(result.auc_one_shot)}, after fine-tuning {auc(result.auc_after)}\n"
        f"model  {result.model}\nnext:  edgekit export {result.model} --sparse ...",
        highlight=False,
    )


def _model_data(
    model: Path | None, weights: Path | None, arch: str | None, arch_kwargs: str | None, trust_pickle: bool,
    data: Path | None, calib: Path | None, mean: str | None, std: str | None, input_shape: str | None,
) -> ModelData:  # fmt: skip
    from edgekit.compress.workspace import ModelData

    return ModelData(
        model_source(model, weights, arch, arch_kwargs, trust_pickle), data, calib,
        parse_floats(mean, "--mean"), parse_floats(std, "--std"), parse_shape(input_shape),
    )  # fmt: skip


def _floats(text: str, name: str) -> tuple[float, ...]:
    from edgekit.errors import UsageError

    try:
        return tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise UsageError(f"{name} {text!r} must be comma-separated numbers like 0.7,0.8,0.9") from None


def sensitivity(
    model: Path | None = _MODEL,
    calib: Path | None = _CALIB,
    data: Path | None = _DATA,
    out: Path = typer.Option(Path("sensitivity"), "--out", "-o", help="Output folder (created)."),
    samples: int = typer.Option(32, "--samples", help="Inputs per SQNR measurement."),
    val_samples: int = typer.Option(200, "--val-samples", help="Validation samples for the pruning AUC."),
    prune_ratio: float = typer.Option(0.8, "--prune-ratio", help="Zeros per layer in the pruning test."),
    pattern: str = typer.Option("xnnpack", "--pattern", help="Which layers the pruning test covers."),
    fallback: int = typer.Option(2, "--fallback", help="Most sensitive ops kept FP32 in the mixed recipe."),
    int4_min_sqnr: float = typer.Option(
        30.0, "--int4-min-sqnr", help="Output SQNR (dB) an FC needs for INT4."
    ),
    mean: str | None = _MEAN,
    std: str | None = _STD,
    input_shape: str | None = _SHAPE,
    arch: str | None = _ARCH,
    arch_kwargs: str | None = _ARCH_KWARGS,
    weights: Path | None = _WEIGHTS,
    trust_pickle: bool = _TRUST,
    top: int = typer.Option(10, "--top", help="Rows shown per table."),
) -> None:
    """Per-layer INT8/INT4 quantization error and pruning sensitivity; writes a mixed recipe for `export --recipe`."""
    from edgekit.compress.sensitivity import SensitivitySpec
    from edgekit.compress.sensitivity import sensitivity as run_sensitivity

    ui = UI.current()

    def build() -> SensitivitySpec:
        md = _model_data(model, weights, arch, arch_kwargs, trust_pickle, data, calib, mean, std, input_shape)
        return SensitivitySpec(
            model=md, out_dir=out, samples=samples, val_samples=val_samples,
            prune_ratio=prune_ratio, pattern=pattern, fallback=fallback, int4_min_sqnr_db=int4_min_sqnr,
        )  # fmt: skip

    spec = run_guarded(ui, build)
    with ui.err.status("measuring") as status:
        result = run_guarded(
            ui, lambda: run_sensitivity(spec, lambda m, d, t: status.update(plain(f"{m} {d}/{t}")))
        )
    q = _table(
        "most INT8-sensitive ops (model-output SQNR, dB)",
        ("op", "layer", "kind", "INT8", "layer INT8", "INT4"),
    )
    for o in result.most_sensitive(top):
        q.add_row(
            str(o.op),
            o.name,
            o.kind,
            f"{o.int8_output_sqnr_db:.1f}",
            _db(o.int8_layer_sqnr_db),
            _db(o.int4_output_sqnr_db),
        )
    ui.err.print(q)
    p = _table(
        f"most prune-sensitive layers ({result.prune_ratio:.0%} zeros, one at a time)",
        ("layer", "kind", "AUC", "drop"),
    )
    for r in sorted(result.pruning, key=lambda r: -(r.auc_drop or 0.0))[:top]:
        p.add_row(r.name, r.kind, _db(r.auc), _db(r.auc_drop))
    ui.err.print(p)
    ui.err.print(
        f"wrote {out / 'sensitivity.json'}, {out / 'sensitivity.png'} and {out / 'mixed_recipe.json'}\n"
        f"next:  edgekit export MODEL --recipe {out / 'mixed_recipe.json'} --calib ...",
        highlight=False,
    )


def _db(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def optimize(
    model: Path | None = _MODEL,
    calib: Path | None = _CALIB,
    data: Path | None = _DATA,
    max_auc_drop: float = typer.Option(0.01, "--max-auc-drop", help="Largest AUC loss a winner may have."),
    objective: str = typer.Option(
        "size", "--objective", help="size (smallest file) or latency (fastest on this host)."
    ),
    sparsity_levels: str = typer.Option(
        "0.7,0.8,0.9", "--sparsity-levels", help="Pruning levels to try, rising."
    ),
    prune_steps: int = typer.Option(150, "--prune-steps", help="Fine-tuning steps per pruning level."),
    no_sparse: bool = typer.Option(
        False, "--no-sparse", metavar="", help="Skip the pruned candidates (no fine-tuning)."
    ),
    val_samples: int = typer.Option(500, "--val-samples", help="Validation samples scored per candidate."),
    out: Path = typer.Option(Path("optimize"), "--out", "-o", help="Output folder (created)."),
    mean: str | None = _MEAN,
    std: str | None = _STD,
    input_shape: str | None = _SHAPE,
    arch: str | None = _ARCH,
    arch_kwargs: str | None = _ARCH_KWARGS,
    weights: Path | None = _WEIGHTS,
    trust_pickle: bool = _TRUST,
    device: str | None = typer.Option(
        None, "--device", help="Also time every candidate on this device (serial, pixel9, or emulator)."
    ),
    adb: str | None = typer.Option(None, "--adb", help="adb server HOST:PORT (default 127.0.0.1:5037)."),
    strict: bool = typer.Option(
        False, "--strict", metavar="", help="Exit 1 when no candidate meets the budget."
    ),
) -> None:
    """Search FP16/INT8/INT8+fallback/INT4-mixed/sparse candidates for the smallest (or fastest) within budget."""
    from edgekit.compress.optimize import OptimizeSpec
    from edgekit.compress.optimize import optimize as run_optimize

    ui = UI.current()

    def build() -> OptimizeSpec:
        md = _model_data(model, weights, arch, arch_kwargs, trust_pickle, data, calib, mean, std, input_shape)
        return OptimizeSpec(
            model=md, out_dir=out, max_auc_drop=max_auc_drop, objective=objective,
            sparsity_levels=() if no_sparse else _floats(sparsity_levels, "--sparsity-levels"),
            prune_steps=prune_steps, val_samples=val_samples,
        )  # fmt: skip

    spec = run_guarded(ui, build)
    timer = None
    if device is not None:
        from edgekit.device.bench import latency_timer

        timer = latency_timer(device, adb, out / "device")
    with ui.err.status("searching") as status:
        result = run_guarded(
            ui,
            lambda: run_optimize(
                spec, lambda m, d, t: status.update(plain(f"{m} {d}/{t}")), device_timer=timer
            ),
        )
    table = _table(
        f"edgekit optimize: {objective}, AUC drop <= {max_auc_drop} (baseline AUC {_db(result.baseline_auc)})",
        (
            "candidate",
            "MB",
            "x smaller",
            "AUC",
            "drop",
            "parity",
            "host ms",
            "device ms",
            "sparse",
            "verdict",
        ),
    )
    for c in result.candidates:
        parity = "-" if c.parity_passed is None else ("pass" if c.parity_passed else "FAIL")
        table.add_row(
            c.name, _db(c.size_bytes and c.size_bytes / 1e6), "-" if not c.size_ratio else f"{1 / c.size_ratio:.2f}",
            _db(c.auc), _db(c.auc_drop), parity, _db(c.latency_ms), _db(c.device_ms), c.sparsity_verdict or "-",
            paint(c.verdict, "green") if c.verdict == "winner" else c.verdict,
        )  # fmt: skip
    ui.err.print(table)
    ui.err.print(
        f"report: {out / 'optimize.md'}; winner: {out / 'best.tflite'}"
        if result.winner
        else "no candidate met the budget",
        highlight=False,
    )
    if strict and result.winner is None:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command("prune")(prune)
    app.command("sensitivity")(sensitivity)
    app.command("optimize")(optimize)


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, no_wrap=True)
    return table
