"""The compression report: metrics from saved scores, plots, ``report.md`` and a self-contained
``report.html`` (images embedded, no network). `edgekit report DIR` re-renders without inference.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._io import atomic_write_bytes, atomic_write_text, ensure_output_dir
from edgekit.errors import FileFormatError
from edgekit.evaluation.metrics import aggregate_videos, binary_metrics, verdict
from edgekit.evaluation.results import EvalMeta, HeatmapEntry, ScoreTable, load_eval_meta, load_scores
from edgekit.validate import contained, escape_controls


def _fmt(v: Any, spec: str = ".4f") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def compute(meta: EvalMeta, table: ScoreTable) -> dict[str, Any]:
    """metrics.json content: per variant frame/video/per-method metrics and the baseline comparison."""
    labels, videos, methods = table.labels, table.videos, table.methods
    thr = meta.threshold
    base = table.scores[meta.baseline]
    result: dict[str, Any] = {"threshold": thr, "variants": {}}
    base_auc = None
    for name in meta.variants:
        s = table.scores[name]
        frame = binary_metrics(labels, s, thr)
        entry: dict[str, Any] = {"frame": frame}
        if meta.videos:
            _, vl, vs = aggregate_videos(videos, labels.tolist(), s, meta.video_agg)
            entry["video"] = binary_metrics(vl, vs, thr)
        fake_methods = sorted({m for m, y in zip(methods, labels, strict=True) if y == 1 and m != "fake"})
        entry["per_method"] = {}
        for m in fake_methods:
            keep = np.array([(y == 0) or (mm == m) for mm, y in zip(methods, labels, strict=True)])
            entry["per_method"][m] = binary_metrics(labels[keep], s[keep], thr)
        if name == meta.baseline:
            base_auc = frame["auc"]
        entry["flips_vs_baseline"] = int(np.sum((s >= thr) != (base >= thr)))
        result["variants"][name] = entry
    budget = meta.budget
    for name, entry in result["variants"].items():
        auc = entry["frame"]["auc"]
        diff = None if auc is None or base_auc is None else auc - base_auc
        entry["auc_diff"] = diff
        entry["status"], entry["broke"] = verdict(
            entry, result["variants"][meta.baseline], len(labels), budget
        )
        if name == meta.baseline:
            entry["status"] = "Reference"
    result["budget"] = vars(budget)
    result["threshold_position"] = threshold_position(labels, base, thr)
    result["single_class"] = len(set(labels.tolist())) < 2
    return result


def threshold_position(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Where the threshold sits against the baseline's real and fake score distributions."""
    out: dict[str, Any] = {
        "threshold": threshold,
        "above": float(np.mean(scores >= threshold)) if len(scores) else 0.0,
    }
    for name, label in (("real", 0), ("fake", 1)):
        s = scores[labels == label]
        if len(s):
            out[name] = {"median": float(np.median(s)), "p05": float(np.quantile(s, 0.05)),
                         "p95": float(np.quantile(s, 0.95))}  # fmt: skip
    return out


def _plots(out: Path, meta: EvalMeta, table: ScoreTable, metrics: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

    names, labels, scores = meta.variants, table.labels, table.scores
    both = not metrics["single_class"]
    files: dict[str, str] = {}
    plots = ensure_output_dir(out / "plots")

    def save(fig: Any, name: str) -> None:
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        atomic_write_bytes(plots / name, buf.getvalue())
        files[name.removesuffix(".png")] = f"plots/{name}"

    fig, ax = plt.subplots(figsize=(6, 4))
    placed: list[tuple[float, float]] = []
    widest = max((b for b in meta.size_bytes.values() if b), default=1) / 1e6
    for n in names:
        size, auc = meta.size_bytes.get(n), metrics["variants"][n]["frame"]["auc"]
        if size and auc is not None:
            ax.scatter(size / 1e6, auc)
            # variants of one size and AUC (fp32 TFLite/ONNX/PyTorch) get stacked labels, not one blot
            stack = sum(1 for x, y in placed if abs(x - size / 1e6) < 0.12 * widest and abs(y - auc) < 0.002)
            placed.append((size / 1e6, auc))
            ax.annotate(_plot_label(n), (size / 1e6, auc), fontsize=7, xytext=(4, 4 + 9 * stack),
                        textcoords="offset points")  # fmt: skip
    ax.set_xlabel("size (MB, from the files)")
    ax.set_ylabel("AUC")
    ax.set_title("Size vs AUC")
    save(fig, "size_vs_auc.png")
    if both:
        fig, ax = plt.subplots(figsize=(5, 5))
        for n in names:
            fpr, tpr, _ = roc_curve(labels, scores[n])
            ax.plot(fpr, tpr, label=f"{_plot_label(n)} ({metrics['variants'][n]['frame']['auc']:.4f})", lw=1)
        ax.plot([0, 1], [0, 1], "k:", lw=0.5)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("ROC")
        ax.legend(fontsize=7)
        save(fig, "roc.png")
        fig, ax = plt.subplots(figsize=(5, 5))
        for n in names:
            p, r, _ = precision_recall_curve(labels, scores[n])
            ax.plot(r, p, label=f"{_plot_label(n)} (AP {metrics['variants'][n]['frame']['ap']:.4f})", lw=1)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("Precision-recall")
        ax.legend(fontsize=7)
        save(fig, "pr.png")
    cols = min(4, len(names))
    rws = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rws, cols, figsize=(3.2 * cols, 2.6 * rws), squeeze=False)
    for ax, n in zip(axes.ravel(), names, strict=False):
        ax.hist(scores[n][labels == 0], bins=30, range=(0, 1), alpha=0.6, label="real")
        ax.hist(scores[n][labels == 1], bins=30, range=(0, 1), alpha=0.6, label="fake")
        ax.axvline(metrics["threshold"], color="k", lw=0.8)
        ax.set_title(_plot_label(n), fontsize=8)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Score distributions (real vs fake; line: threshold)")
    fig.tight_layout(rect=(0, 0, 1, 0.95))  # the figure title above the panel titles, not over them
    save(fig, "score_distributions.png")
    fig, axes = plt.subplots(rws, cols, figsize=(2.6 * cols, 2.4 * rws), squeeze=False)
    for ax, n in zip(axes.ravel(), names, strict=False):
        cm = confusion_matrix(labels, (scores[n] >= metrics["threshold"]).astype(int), labels=[0, 1])
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(int(cm.max()), 1))
        for (i, j), v in np.ndenumerate(cm):
            dark = v > 0.5 * cm.max()
            ax.text(j, i, str(v), ha="center", va="center", fontsize=9, color="white" if dark else "black")
        ax.set_xticks([0, 1], ["real", "fake"])
        ax.set_yticks([0, 1], ["real", "fake"])
        ax.set_title(_plot_label(n), fontsize=8)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    fig.suptitle("Confusion matrices (rows: truth, columns: prediction)")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    save(fig, "confusion.png")
    return files


@dataclass(frozen=True)
class Text:
    """A paragraph; lines starting with ``- `` are a bullet list."""

    text: str


@dataclass(frozen=True)
class TableBlock:
    """A table of already formatted cells."""

    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Image:
    """A plot, by its path inside the eval folder."""

    path: str
    alt: str


@dataclass(frozen=True)
class Gallery:
    """Heatmaps of the top samples of one variant."""

    entries: list[HeatmapEntry]


SKIPPED_IN_REPORT = 50


@dataclass(frozen=True)
class Items:
    """A bullet list of untrusted text (file names, reasons): shown literally in both formats."""

    items: list[str]


Block = Text | TableBlock | Image | Gallery | Items
Section = tuple[str, list[Block]]


def _host_kernel_notes(meta: EvalMeta) -> list[str]:
    """Variants whose scores on this host's kernels are not what a phone computes."""
    from edgekit.exporters.onnx import saturating_host

    why = saturating_host()
    onnx_int8 = [n for n in meta.variants if meta.format.get(n) == "onnx" and meta.precision.get(n) == "int8"]
    if not why or not onnx_int8:
        return []
    return [f"{', '.join(onnx_int8)} scored with this host's onnxruntime kernels: {why}, so these numbers are not "
            "the phone's (ARM kernels do not saturate); the export's arm64 parity is (make arm64)."]  # fmt: skip


def _insights(meta: EvalMeta, m: dict[str, Any], size: dict[str, int]) -> list[str]:
    """What broke and where, in sentences; never a "largest drop" that is only noise."""
    v, base = m["variants"], meta.baseline
    others = [n for n in meta.variants if n != base]
    out: list[str] = []
    for n in others:
        if v[n]["status"] == "Degraded":
            out.append(f"{n} is Degraded: {'; '.join(v[n]['broke'])}.")
    stable = [n for n in others if v[n]["status"] == "Stable" and size.get(n)]
    if stable:
        small = min(stable, key=lambda n: size[n])
        b = meta.budget
        out.append(f"Smallest Stable variant (AUC within {b.auc:g}, accuracy and F1 within {b.accuracy:g}/{b.f1:g}, "
                   f"flips <= {b.flip_rate:.0%}): {small} ({size[small] / 1e6:.2f} MB).")  # fmt: skip
    moved = [n for n in others if v[n]["auc_diff"] is not None]
    if moved:
        worst = min(moved, key=lambda n: v[n]["auc_diff"])
        flips = max(v[n]["flips_vs_baseline"] for n in others)
        if v[worst]["auc_diff"] < -5e-4 or flips:
            out.append(
                f"Largest AUC drop: {worst} ({v[worst]['auc_diff']:+.4f}); most flipped decisions: {flips}."
            )
        else:
            out.append(
                "No variant moved from the baseline beyond noise (AUC within 0.0005, no decision flipped)."
            )
    elif not others:
        out.append("Only the PyTorch baseline was scored.")
    if m["single_class"]:
        out.append("AUC is undefined: the data holds a single class; the other metrics are still reported.")
    out += _host_kernel_notes(meta)
    pos = m.get("threshold_position") or {}
    thr, above = pos.get("threshold", m["threshold"]), pos.get("above", 0.0)
    base_acc = v[base]["frame"]["accuracy"]
    if not m["single_class"] and (above >= 0.98 or above <= 0.02):
        side = "at or above" if above >= 0.98 else "below"
        out.append(f"{max(above, 1 - above):.0%} of the baseline's scores sit {side} the threshold {thr:.4g}: it "
                   f"predicts one class for almost everything (accuracy {_fmt(base_acc)}); check the threshold and "
                   "the preprocessing (mean/std) before trusting any AUC here.")  # fmt: skip
    elif "real" in pos and "fake" in pos:
        r, f = pos["real"], pos["fake"]
        out.append(f"The threshold {thr:.4g} against the baseline's scores: real median {r['median']:.3f} "
                   f"(95% below {r['p95']:.3f}), fake median {f['median']:.3f} (5% below {f['p05']:.3f}).")  # fmt: skip
    return out


def _sections(meta: EvalMeta, m: dict[str, Any], plots: dict[str, str]) -> list[Section]:
    names = meta.variants
    base = meta.baseline
    size = {n: b for n, b in meta.size_bytes.items() if b}  # unknown sizes (None, 0) are left out
    # reduction against the FP32 TFLite file, as in the export table (the .pt2 is no deployment format)
    base_size = size.get("tflite_fp32") or size.get(base)
    v = m["variants"]
    perf = TableBlock(
        ["Model", "Format", "Precision", "Size (MB)", "x smaller than FP32", "AUC", "Diff", "Accuracy", "F1", "Flips",
         "Status"],
        [[n, meta.format.get(n, "?"), meta.precision.get(n, "?"),
          _fmt(size[n] / 1e6, ".2f") if n in size else "n/a",
          f"{base_size / size[n]:.2f}x" if base_size and n in size else "n/a",
          _fmt(v[n]["frame"]["auc"]), _fmt(v[n]["auc_diff"], "+.4f"), _fmt(v[n]["frame"]["accuracy"]),
          _fmt(v[n]["frame"]["f1"]), str(v[n]["flips_vs_baseline"]), v[n]["status"]] for n in names],
    )  # fmt: skip
    insights = _insights(meta, m, size)
    speed = meta.images_per_s
    if speed:
        fastest = max(speed, key=lambda n: speed[n])
        insights.append(
            f"Fastest on this host: {fastest} ({speed[fastest]:.0f} images/s; host CPU, not a phone)."
        )
    quality = TableBlock(
        ["Model", "Samples", "TP", "TN", "FP", "FN", "Precision", "Recall", "F1", "Accuracy", "Real acc", "Fake acc",
         "AP", "EER", "TPR@1%FPR", "TPR@5%FPR", "Log loss", "Flips vs baseline"],
        [[n, str(f["samples"]), str(f["tp"]), str(f["tn"]), str(f["fp"]), str(f["fn"]), _fmt(f["precision"]),
          _fmt(f["recall"]), _fmt(f["f1"]), _fmt(f["accuracy"]), _fmt(f["real_accuracy"]), _fmt(f["fake_accuracy"]),
          _fmt(f["ap"]), _fmt(f["eer"]), _fmt(f["tpr_at_fpr_1pct"]), _fmt(f["tpr_at_fpr_5pct"]), _fmt(f["log_loss"]),
          str(v[n]["flips_vs_baseline"])] for n in names for f in [v[n]["frame"]]],
    )  # fmt: skip
    sections: list[Section] = [
        ("1. Performance summary", [perf]),
        ("2. Key insights", [Text("\n".join(f"- {i}" for i in insights))]),
        (f"3. Classification quality (frame level, threshold {m['threshold']:.4f})", [quality]),
    ]
    if any("video" in v[n] for n in names):
        video = TableBlock(["Model", "Videos", "AUC", "AP", "Accuracy", "EER", "F1"],
                 [[n, str(v[n]["video"]["samples"]), _fmt(v[n]["video"]["auc"]), _fmt(v[n]["video"]["ap"]),
                   _fmt(v[n]["video"]["accuracy"]), _fmt(v[n]["video"]["eer"]), _fmt(v[n]["video"]["f1"])]
                  for n in names])  # fmt: skip
        sections.append((f"3b. Video level ({meta.video_agg} of {meta.frames} frames)", [video]))
    methods = sorted({k for n in names for k in v[n]["per_method"]})
    if methods:
        per = TableBlock(["Model", *[f"AUC {k}" for k in methods]],
               [[n, *[_fmt(v[n]["per_method"].get(k, {}).get("auc")) for k in methods]] for n in names])  # fmt: skip
        sections.append(("3c. Per manipulation method (all real samples + that method's fakes)", [per]))
    plot_blocks: list[Block] = [
        Image(plots[k], k)
        for k in ("size_vs_auc", "roc", "pr", "score_distributions", "confusion")
        if k in plots
    ]
    sections.append(("4. Plots", plot_blocks))
    visual: list[Block] = []
    drift = meta.heatmap_drift_iou
    if drift:
        visual.append(TableBlock(["Model", "Heatmap", "Drift vs baseline (IoU of top 10% pixels, occlusion)"],
                       [[n, meta.heatmap_method.get(n, "?"), _fmt(drift.get(n), ".3f")] for n in names]))  # fmt: skip
    for n in names:
        entries = meta.heatmaps.get(n, [])
        if entries:
            visual.append(Text(f"**{n}** ({meta.heatmap_method.get(n, '?')})"))
            visual.append(Gallery(entries))
    if not visual:
        visual.append(Text("Heatmaps were not computed (--no-heatmaps or --top-k 0)."))
    sections.append(
        ("5. Visual analysis: top true positives, false negatives, false positives, true negatives", visual)
    )
    sections.append(("6. Data and time", _data_and_time(meta)))
    if meta.skipped:
        total = max(meta.skipped_total, len(meta.skipped))
        shown = [f"{a}: {b}" for a, b in meta.skipped[:SKIPPED_IN_REPORT]]
        if total > len(shown):
            shown.append(f"... and {total - len(shown)} more (eval.json lists the first {len(meta.skipped)})")
        sections.append((f"Skipped files ({total})", [Items(shown)]))
    return sections


def _data_and_time(meta: EvalMeta) -> list[Block]:
    """Where the samples came from (crop, faceless frames) and where the run's time went."""
    lines = [
        f"{meta.samples} samples"
        + (f" from {meta.videos} videos ({meta.frames} frames each)" if meta.videos else "")
    ]
    if meta.data.get("layout"):
        d = meta.data
        lines.append(f"Read as {d['layout']}: split {d.get('split') or 'all'}"
                     + (f", quality {d['quality']}" if d.get("quality") else "")
                     + "".join(f"; {n}" for n in d.get("notes", [])))  # fmt: skip
    if meta.face_crop:
        crop = meta.face_crop
        lines.append(
            f"Face crop: {crop.get('detector')} (score >= {crop.get('min_score')}), largest face, square x "
            f"{crop.get('margin')}; {meta.no_face} frame(s) without a face were left out. The phone must crop the same way."
        )
    else:
        lines.append("Whole frames (no face crop).")
    lines.append(
        f"PyTorch baseline batch: {meta.baseline_batch}; exported variants run at batch 1, as on the phone."
    )
    blocks: list[Block] = [Items(lines)]  # paths and folder names from disk: shown literally
    total = meta.timing.get("total")
    if total:
        rows = [[k, f"{v:.2f}", f"{v / total:.0%}"] for k, v in meta.timing.items() if k != "total"]
        rows.append(["total (wall)", f"{total:.2f}", "100%"])
        blocks.append(TableBlock(["Step", "Seconds", "Share of the run"], rows))
    return blocks


def _md(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for head, blocks in sections:
        lines += [f"## {head}", ""]
        for b in blocks:
            if isinstance(b, Text):
                lines += [b.text, ""]
            elif isinstance(b, Image):
                lines += [f"![{_md_cell(b.alt)}]({_md_cell(b.path)})", ""]
            elif isinstance(b, Items):
                lines += [*(f"- {_md_cell(i)}" for i in b.items), ""]
            elif isinstance(b, Gallery):
                lines += ["| category | sample | score | heatmap |", "|---|---|---|---|"]
                lines += [
                    f"| {e.category} | {_md_cell(e.sample)} | {e.score:.4f} | ![]({_md_cell(e.file)}) |"
                    for e in b.entries
                ]
                lines.append("")
            else:
                lines += ["| " + " | ".join(b.header) + " |", "|" + "---|" * len(b.header)]
                lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in b.rows]
                lines.append("")
    return "\n".join(lines)


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_MAX_IMAGE_BYTES = 8 << 20


def _img(out: Path, rel: str) -> str:
    """A PNG inside the eval folder as a data URI; anything else (outside, missing, not a PNG) is left out."""
    try:
        path = contained(out, rel, "image")
        data = path.read_bytes() if path.is_file() and path.stat().st_size <= _MAX_IMAGE_BYTES else b""
    except (FileFormatError, OSError):
        data = b""
    if not data.startswith(_PNG_MAGIC):
        return ""
    return f"data:image/png;base64,{base64.b64encode(data).decode('ascii')}"


def _img_tag(out: Path, rel: str, alt: str, width: int | None) -> str:
    src = _img(out, rel)
    if not src:
        return f"<p><em>(image {html.escape(rel)} missing or not inside the eval folder)</em></p>"
    size = f" width='{width}'" if width else " style='max-width:100%'"
    return f"<img alt='{html.escape(alt)}' src='{src}'{size}>"


def _md_cell(text: str) -> str:
    """Text safe inside a markdown table cell: no column breaks, links, HTML or code spans."""
    return escape_controls(re.sub(r"([\\|<>\[\]`])", r"\\\1", str(text)), keep="")


def _plot_label(name: str) -> str:
    """A variant name as matplotlib text: ``$`` would start mathtext."""
    return name.replace("$", r"\$")


def _html(out: Path, title: str, sections: list[Section]) -> str:
    def e(text: str) -> str:  # names from disk: a line break or escape shown as written
        return html.escape(escape_controls(text, keep=""))

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px}"
        "th{background:#f0f0f0}.gallery{display:flex;flex-wrap:wrap;gap:8px}.gallery figure{margin:0;font-size:11px}"
        "</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for head, blocks in sections:
        parts.append(f"<h2>{e(head)}</h2>")
        for b in blocks:
            if isinstance(b, Text):
                items = [ln[2:] for ln in b.text.splitlines() if ln.startswith("- ")]
                if items:
                    parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>")
                else:
                    parts.append(f"<p>{html.escape(escape_controls(b.text.replace('**', '')))}</p>")
            elif isinstance(b, Items):
                parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in b.items) + "</ul>")
            elif isinstance(b, Image):
                parts.append(_img_tag(out, b.path, b.alt, None))
            elif isinstance(b, Gallery):
                figs = [f"<figure>{_img_tag(out, x.file, x.category, 192)}<figcaption>"
                        f"{e(x.category)} {x.score:.3f}<br>{e(x.sample)}</figcaption></figure>" for x in b.entries]  # fmt: skip
                parts.append("<div class='gallery'>" + "".join(figs) + "</div>")
            else:
                parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in b.header) + "</tr>")
                parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b.rows]
                parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_document(out: Path, stem: str, title: str, sections: list[Section]) -> dict[str, Path]:
    """Write ``sections`` as ``<stem>.md`` and ``<stem>.html`` in ``out`` (atomically)."""
    atomic_write_text(out / f"{stem}.md", _md(title, sections))
    atomic_write_text(out / f"{stem}.html", _html(out, title, sections))
    return {"md": out / f"{stem}.md", "html": out / f"{stem}.html"}


def render(out_dir: Path) -> dict[str, Path]:
    """Compute metrics from saved scores and write metrics.json, plots, report.md and report.html."""
    out = Path(out_dir)
    meta = load_eval_meta(out)
    table = load_scores(out, meta)
    metrics = compute(meta, table)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    plots = _plots(out, meta, table, metrics)
    title = f"edgekit compression report: {meta.model}"
    sections = _sections(meta, metrics, plots)
    return {**write_document(out, "report", title, sections), "metrics": out / "metrics.json"}
