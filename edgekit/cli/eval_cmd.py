"""`edgekit eval` and `edgekit report`: detector metrics for every variant and the compression report."""

from __future__ import annotations

from pathlib import Path

import typer

from edgekit.cli._options import FACE_CROP_HELP, FACE_MARGIN, FACE_MARGIN_HELP, face_crop, parse_arch_kwargs
from edgekit.cli._ui import UI, paint, plain, run_guarded
from edgekit.validate import escape_controls, read_json


def evaluate(
    export_dir: Path = typer.Argument(..., help="The export folder (manifest.json)."),
    data: list[str] = typer.Option(
        ...,
        "--data",
        help="A data set: FaceForensics++, Celeb-DF or DFDC as downloaded, real/ and fake/ folders, or a "
        "CSV/JSON of path,label. Repeat as NAME=PATH (ff++=/data/FF --data celebdf=/data/CDF) for the "
        "cross-data-set table; the first is the one the detector was trained on.",
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", help="The layout: ff++, celebdf, dfdc, folders or list (default: recognised)."
    ),
    quality: str | None = typer.Option(
        None, "--quality", help="FaceForensics++ quality: c23 (default), c40, raw."
    ),
    split: str | None = typer.Option(
        None,
        "--split",
        help="The official split: train, val or test (FF++ split files, Celeb-DF's test list).",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Report folder (default: EXPORT_DIR/report)."),
    videos: bool = typer.Option(
        False, "--videos", metavar="", help="Report video-level metrics (videos are always decoded)."
    ),
    frames: int = typer.Option(
        16,
        "--frames-per-video",
        "--frames",
        help="Frames sampled evenly per video (first and last included).",
    ),
    video_agg: str = typer.Option(
        "mean", "--video-agg", help="Video score: mean, median or max of its frames."
    ),
    threshold: str = typer.Option(
        "0.5", "--threshold", help="Decision threshold, or 'eer' (the baseline's EER threshold)."
    ),
    tolerance: float = typer.Option(0.01, "--tolerance", help="AUC loss still called Stable."),
    max_acc_drop: float = typer.Option(
        0.02, "--max-acc-drop", help="Accuracy loss at the threshold still Stable."
    ),
    max_f1_drop: float = typer.Option(0.02, "--max-f1-drop", help="F1 loss at the threshold still Stable."),
    max_flip_rate: float = typer.Option(
        0.01, "--max-flip-rate", help="Share of decisions that may differ from the baseline's."
    ),
    top_k: int = typer.Option(5, "--top-k", help="Heatmaps per category (TP, FN, FP, TN) and variant."),
    grid: int = typer.Option(8, "--grid", help="Occlusion grid (grid^2 + 1 inferences per heatmap)."),
    no_heatmaps: bool = typer.Option(False, "--no-heatmaps", metavar="", help="Skip the visual analysis."),
    variants: str | None = typer.Option(None, "--variants", help="Only these variants (comma-separated)."),
    trust_pickle: bool = typer.Option(
        False, "--trust-pickle", metavar="", help="Allow unpickling the baseline model file."
    ),
    baseline: Path | None = typer.Option(
        None, "--baseline", help="The PyTorch model to compare with (default: the one the manifest records)."
    ),
    arch: str | None = typer.Option(
        None, "--arch", help="module:factory for a state-dict baseline (never taken from the manifest)."
    ),
    arch_kwargs: str | None = typer.Option(
        None, "--arch-kwargs", help="JSON object of factory keyword arguments."
    ),
    face_crop_on: bool = typer.Option(
        False, "--face-crop", metavar="", help=FACE_CROP_HELP + " Default: as the export recorded."
    ),
    face_margin: float = typer.Option(FACE_MARGIN, "--face-margin", help=FACE_MARGIN_HELP),
    resume: bool = typer.Option(
        False, "--resume", metavar="", help="Carry on from the scores a stopped run left in the -o folder."
    ),
    chunk: int = typer.Option(64, "--chunk", help="Frames decoded and scored at a time (bounds memory)."),
    batch: int = typer.Option(32, "--batch", help="Largest batch for the PyTorch baseline."),
    ray: str | None = typer.Option(
        None,
        "--ray",
        metavar="ADDRESS",
        help="Score on Ray: 'local' starts a cluster here, else a cluster address (pip install 'edgekit[ray]').",
    ),
    ray_workers: int = typer.Option(2, "--ray-workers", help="Ray actors (one CPU each)."),
) -> None:
    """Score labelled images/videos with PyTorch and every variant; write scores, metrics and the report."""
    from edgekit.evaluation.evaluate import EvalSpec
    from edgekit.evaluation.evaluate import evaluate as run_eval

    ui = UI.current()
    del videos  # video-level metrics appear whenever the data holds videos

    from edgekit.evaluation.cross import evaluate_across, parse_data_args

    def build() -> tuple[EvalSpec, list[tuple[str, Path]]]:
        named = parse_data_args(data)
        return EvalSpec(
            export_dir=export_dir, data=named[0][1], out_dir=out or export_dir / "report", frames=frames,
            video_agg=video_agg, threshold=threshold, tolerance=tolerance, top_k=top_k,
            max_acc_drop=max_acc_drop, max_f1_drop=max_f1_drop, max_flip_rate=max_flip_rate,
            variants=tuple(v.strip() for v in variants.split(",")) if variants else None,
            trust_pickle=trust_pickle, heatmaps=not no_heatmaps, grid=grid, baseline=baseline, arch=arch,
            arch_kwargs=parse_arch_kwargs(arch_kwargs), face_crop=face_crop(face_crop_on, face_margin),
            resume=resume, chunk=chunk, batch=batch, ray=ray, ray_workers=ray_workers, dataset=dataset,
            quality=quality, split=split,
        ), named  # fmt: skip

    spec, named = run_guarded(ui, build)
    across = len(named) > 1 or "=" in data[0]
    with ui.err.status("evaluating") as status:
        if across:
            folder = run_guarded(ui, lambda: evaluate_across(spec, named, lambda m: status.update(plain(m))))
        else:
            folder = run_guarded(ui, lambda: run_eval(spec, lambda m: status.update(plain(m))))
    if across:
        _cross_summary(ui, folder)
    else:
        _summary(ui, folder)


def report(folder: Path = typer.Argument(..., help="A folder written by 'edgekit eval'.")) -> None:
    """Re-render the report from saved scores (no inference)."""
    from edgekit.evaluation.report import render

    ui = UI.current()
    run_guarded(ui, lambda: render(folder))
    _summary(ui, folder)


def _summary(ui: UI, folder: Path) -> None:

    from rich.table import Table

    from edgekit.evaluation.results import load_eval_meta

    metrics = read_json(folder / "metrics.json")
    table = Table(title=f"edgekit eval (threshold {metrics['threshold']:.4f})", title_justify="left")
    for col in ("variant", "AUC", "diff", "status", "accuracy", "F1", "flips"):
        table.add_column(col, no_wrap=True)
    for name, v in metrics["variants"].items():
        f = v["frame"]
        table.add_row(
            name, "n/a" if f["auc"] is None else f"{f['auc']:.4f}",
            "n/a" if v["auc_diff"] is None else f"{v['auc_diff']:+.4f}", v["status"],
            f"{f['accuracy']:.4f}", "n/a" if f["f1"] is None else f"{f['f1']:.4f}", str(v["flips_vs_baseline"]),
        )  # fmt: skip
    ui.err.print(table)
    for name, v in metrics["variants"].items():
        if v.get("broke"):
            ui.err.print(f"  ! {name}: {'; '.join(v['broke'])}", style="yellow", highlight=False)
    meta = run_guarded(ui, lambda: load_eval_meta(folder))
    total = max(meta.skipped_total, len(meta.skipped))
    if total:
        # a name on disk may hold a line break; a hand-edited eval.json may count files it does not list
        first = f" (first: {escape_controls(': '.join(meta.skipped[0]), keep='')})" if meta.skipped else ""
        ui.err.print(paint(f"{total} file(s) could not be read and were left out{first}; "
                           "the report lists them", "yellow"))  # fmt: skip
    if metrics.get("single_class"):
        ui.err.print(
            "the data holds a single class: AUC, AP and EER are undefined; the rest is reported",
            style="yellow",
        )
    ui.err.print(f"report: {folder / 'report.html'} and {folder / 'report.md'}", highlight=False)


def _cross_summary(ui: UI, folder: Path) -> None:

    from rich.table import Table

    doc = read_json(folder / "cross.json")
    table = Table(title="edgekit eval across data sets", title_justify="left")
    for col in ("data set", "variant", "AUC", "video AUC", "accuracy", "diff", "status"):
        table.add_column(col, no_wrap=True)

    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    for r in doc["rows"]:
        diff = "n/a" if r["auc_diff"] is None else f"{r['auc_diff']:+.4f}"
        table.add_row(
            r["dataset"], r["variant"], f(r["auc"]), f(r["video_auc"]), f(r["accuracy"]), diff, r["status"]
        )
    ui.err.print(table)
    for variant, said in doc["verdicts"].items():
        ui.err.print(f"  {variant}: {said}", highlight=False)
    for name, d in doc["data"].items():
        for note in d.get("notes", []):
            ui.err.print(f"  ! {name}: {note}", style="yellow", highlight=False)
    ui.err.print(f"report: {folder / 'cross.html'} and {folder / 'cross.md'}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command("eval")(evaluate)
    app.command("report")(report)
