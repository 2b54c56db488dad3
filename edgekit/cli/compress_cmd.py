"""`edgekit prune`, `edgekit sensitivity` and `edgekit optimize`: measured compression choices."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from edgekit.cli.app import UI, run_guarded
from edgekit.cli.export_cmd import model_source, parse_floats, parse_shape

_MODEL_HELP = "Model file: .pt2 (safe default), or a .pt/.pth state dict with --arch."
_DATA_HELP = "Labelled images: real/ and fake/ folders (default: the bundled sample's synthetic data)."


def prune(
    model: Path | None = typer.Argument(None, help=_MODEL_HELP),
    sparsity: float = typer.Option(0.8, "--sparsity", help="Share of zeros in the pruned layers (0-1)."),
    pattern: str = typer.Option(
        "xnnpack", "--pattern", help="xnnpack (1x1 convs + FC), block4 (4-channel blocks) or unstructured."
    ),
    data: Path | None = typer.Option(None, "--data", help=_DATA_HELP),
    steps: int = typer.Option(200, "--steps", help="Fine-tuning steps (sparsity ramps over the first 70%)."),
    batch: int = typer.Option(32, "--batch", help="Fine-tuning batch size."),
    lr: float = typer.Option(3e-4, "--lr", help="Fine-tuning learning rate (AdamW)."),
    out: Path = typer.Option(Path("pruned"), "--out", "-o", help="Output folder (created)."),
    name: str = typer.Option("pruned", "--name", help="Stem of the pruned .pt2."),
    seed: int = typer.Option(0, "--seed", help="Seed of sampling and the validation split."),
    mean: str | None = typer.Option(None, "--mean", help="Per-channel mean after scaling to [0,1]."),
    std: str | None = typer.Option(None, "--std", help="Per-channel std."),
    resize: str = typer.Option("bilinear", "--resize", help="bilinear, bicubic or nearest."),
    input_shape: str | None = typer.Option(None, "--input-shape", help="NCHW shape for state dicts."),
    arch: str | None = typer.Option(None, "--arch", help="module.path:factory that builds the nn.Module."),
    arch_kwargs: str | None = typer.Option(None, "--arch-kwargs", help="JSON object of factory kwargs."),
    weights: Path | None = typer.Option(None, "--weights", help="State dict / checkpoint for --arch."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow unpickling a whole nn.Module."),
    as_json: bool = typer.Option(False, "--json", help="Print prune.json on stdout."),
) -> None:
    """Gradual magnitude pruning with short fine-tuning; writes a pruned .pt2 for `export --sparse`."""
    from edgekit.prune import PruneSpec
    from edgekit.prune import prune as run_prune

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
        result = run_guarded(ui, lambda: run_prune(spec, lambda m, d, t: status.update(f"{m} {d}/{t}")))
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


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command("prune")(prune)


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, no_wrap=True)
    return table
