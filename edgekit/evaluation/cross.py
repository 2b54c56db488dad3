"""The cross-data-set table: every variant on every data set, the detector papers' table shape.

``edgekit eval out/ --data ff++=/data/FF --data celebdf=/data/CDF --data dfdc=/data/DFDC``
evaluates each data set into its own sub-folder (``<out>/<name>/``, a complete ``edgekit eval``
report each) and then writes ``cross.json``, ``cross.md`` and ``cross.html`` in ``<out>``: one row
per data set and variant (frame- and video-level AUC, EER, accuracy and F1 at the threshold, AUC
per FF++ method), and one line per variant saying whether it loses more AUC on the unseen data
sets than on the first one (the data set the detector was trained on: FF++ in the papers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from edgekit._io import atomic_write_text, ensure_output_dir
from edgekit.data.layouts import ReadOptions, read_data
from edgekit.errors import UsageError
from edgekit.evaluation.evaluate import EvalSpec, evaluate
from edgekit.validate import read_json

CROSS_SCHEMA = "edgekit.cross/1"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9+_.-]{0,31}")
#: data set names that are also layout names read that layout (anything else is recognised)
_OFFICIAL = ("ff++", "celebdf", "dfdc")


@dataclass(frozen=True)
class CrossRow:
    """One data set x variant."""

    dataset: str
    variant: str
    samples: int
    videos: int
    auc: float | None
    video_auc: float | None
    eer: float | None
    accuracy: float
    f1: float | None
    auc_diff: float | None  #: against the PyTorch baseline on the same data set
    status: str
    per_method: dict[str, float | None]


def parse_data_args(values: list[str]) -> list[tuple[str, Path]]:
    """``--data`` values as (name, path): ``name=path``, or a bare path named after its folder."""
    out: list[tuple[str, Path]] = []
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = Path(value).name or "data", value
        if not _NAME.fullmatch(name) or name in (".", ".."):
            raise UsageError(
                f"--data {value}: name the data set with letters, digits, + _ . - (e.g. ff++=/data/FF)"
            )
        out.append((name, Path(path)))
    if len({n for n, _ in out}) != len(out):
        raise UsageError("--data: each data set needs its own name (NAME=PATH)")
    return out


def evaluate_across(
    spec: EvalSpec, datasets: list[tuple[str, Path]], progress: Callable[[str], None] | None = None
) -> Path:
    """Evaluate ``spec`` on every (name, path) into ``spec.out_dir/<name>/`` and write the cross table."""
    say = progress or (lambda _m: None)
    specs = []
    for name, path in datasets:
        layout = name if name in _OFFICIAL and spec.dataset is None else spec.dataset
        specs.append((name, replace(spec, data=path, out_dir=spec.out_dir / name, dataset=layout)))
        # every data set is read first: a bad last one must not cost the evaluation of the others
        read_data(path, ReadOptions(layout, spec.quality, spec.split))
    out = ensure_output_dir(spec.out_dir)
    for name, one in specs:
        say(f"{name}: evaluating {one.data}")
        evaluate(one, _prefixed(say, name))
    write_cross(out, [n for n, _ in datasets], spec.tolerance)
    return out


def _prefixed(say: Callable[[str], None], name: str) -> Callable[[str], None]:
    return lambda message: say(f"{name}: {message}")


def _rows(out: Path, names: list[str]) -> tuple[list[CrossRow], dict[str, Any]]:
    rows: list[CrossRow] = []
    data: dict[str, Any] = {}
    for name in names:
        metrics = read_json(out / name / "metrics.json")
        meta = read_json(out / name / "eval.json")
        data[name] = meta.get("data") or {}
        for variant, v in metrics["variants"].items():
            frame, video = v["frame"], v.get("video") or {}
            rows.append(CrossRow(
                dataset=name, variant=variant, samples=int(frame["samples"]), videos=int(video.get("samples") or 0),
                auc=frame["auc"], video_auc=video.get("auc"), eer=(video or frame).get("eer"),
                accuracy=float(frame["accuracy"]), f1=frame["f1"], auc_diff=v.get("auc_diff"), status=v["status"],
                per_method={m: r.get("auc") for m, r in (v.get("per_method") or {}).items()},
            ))  # fmt: skip
    return rows, data


def verdicts(rows: list[CrossRow], names: list[str], tolerance: float) -> dict[str, str]:
    """Per variant: does it lose more AUC (video-level when there are videos) on the data sets
    after the first than on the first? ``tolerance`` is the AUC difference still called the same."""
    out: dict[str, str] = {}
    by = {(r.dataset, r.variant): r for r in rows}
    baseline = rows[0].variant if rows else ""
    for variant in dict.fromkeys(r.variant for r in rows):
        if variant == baseline:
            continue
        losses: dict[str, float] = {}
        for name in names:
            r, b = by.get((name, variant)), by.get((name, baseline))
            if r is None or b is None:
                continue
            mine, theirs = (r.video_auc, b.video_auc) if r.video_auc is not None else (r.auc, b.auc)
            if mine is not None and theirs is not None:
                losses[name] = theirs - mine
        if names[0] not in losses or len(losses) < 2:
            out[variant] = "AUC undefined on the first data set or on all the others: no comparison"
            continue
        seen = losses[names[0]]
        unseen = {n: v for n, v in losses.items() if n != names[0]}
        worst = max(unseen, key=lambda n: unseen[n])
        detail = f"AUC loss {seen:+.4f} on {names[0]} (seen), " + ", ".join(
            f"{v:+.4f} on {n}" for n, v in unseen.items()
        )
        if unseen[worst] > seen + tolerance:
            out[variant] = f"loses more on unseen data (worst: {worst}): {detail}"
        elif unseen[worst] < seen - tolerance:
            out[variant] = f"loses less on unseen data than on {names[0]}: {detail}"
        else:
            out[variant] = f"loses about the same on seen and unseen data (within {tolerance}): {detail}"
    return out


def write_cross(out: Path, names: list[str], tolerance: float = 0.01) -> Path:
    """cross.json, cross.md and cross.html from the per-data-set reports in ``out/<name>/``."""
    from edgekit.evaluation.report import Items, TableBlock, Text, write_document

    rows, data = _rows(out, names)
    said = verdicts(rows, names, tolerance)
    doc = {"schema": CROSS_SCHEMA, "datasets": names, "data": data, "tolerance": tolerance,
           "rows": [asdict(r) for r in rows], "verdicts": said}  # fmt: skip
    atomic_write_text(out / "cross.json", json.dumps(doc, indent=2) + "\n")

    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    table = TableBlock(
        ["Data set", "Variant", "Samples", "Videos", "AUC (frame)", "AUC (video)", "EER", "Accuracy", "F1",
         "AUC diff", "Status"],
        [[r.dataset, r.variant, str(r.samples), str(r.videos), f(r.auc), f(r.video_auc), f(r.eer), f(r.accuracy),
          f(r.f1), "n/a" if r.auc_diff is None else f"{r.auc_diff:+.4f}", r.status] for r in rows],
    )  # fmt: skip
    sections: list[Any] = [("Every variant on every data set", [table])]
    methods = sorted({m for r in rows for m in r.per_method if m not in ("real", "fake")})
    if methods:
        per = TableBlock(["Data set", "Variant", *methods],
                         [[r.dataset, r.variant, *[f(r.per_method.get(m)) for m in methods]] for r in rows
                          if any(m in r.per_method for m in methods)])  # fmt: skip
        sections.append(("AUC per manipulation method (frame level)", [per]))
    lines = [f"- {v}: {s}" for v, s in said.items()]
    sections.append((f"Seen ({names[0]}) against unseen data sets", [Text("\n".join(lines) or "no variant")]))
    notes = [f"{n} ({d.get('layout')}, split {d.get('split') or 'all'}): {note}"
             for n, d in data.items() for note in d.get("notes", [])]  # fmt: skip
    reading = [f"{n}: {d.get('layout', '?')} layout, split {d.get('split') or 'all'}, "
               f"quality {d.get('quality') or 'n/a'}, {d.get('items', '?')} files" for n, d in data.items()]  # fmt: skip
    sections.append(("How each data set was read", [Items(reading + notes)]))  # notes name folders on disk
    write_document(out, "cross", "edgekit cross-data-set report", sections)
    return out / "cross.json"
