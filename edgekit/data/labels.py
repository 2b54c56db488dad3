"""One discovery of real/fake labels and manipulation methods, for every consumer.

Calibration, parity, evaluation and pruning data all read labels the same way: the first
folder named ``real`` or ``fake`` (any case, any depth) gives the label, and for fakes the
folder right below ``fake/`` names the manipulation method (FaceForensics++'s
``fake/Deepfakes/...``). A CSV/JSON list of ``path,label[,method]`` is the other source.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path, PurePath

from edgekit.errors import DataError
from edgekit.validate import read_json

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
ARRAY_EXTS = frozenset({".npy", ".npz"})
VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".webm", ".mkv"})
LABEL_NAMES = {"real": 0, "fake": 1}
_LIST_LABELS = {"0": 0, "1": 1, "real": 0, "fake": 1}


@dataclass(frozen=True)
class Item:
    """One labelled file."""

    path: Path
    name: str
    label: int
    method: str | None
    #: a folder of extracted frames read as one video (the common pre-processing's output)
    frames_dir: bool = False

    @property
    def is_video(self) -> bool:
        """True for video files and frame folders."""
        return self.frames_dir or self.path.suffix.lower() in VIDEO_EXTS


def classify(rel: PurePath) -> tuple[int | None, str | None]:
    """(label, method) of a path relative to the data root; (None, None) when unlabelled."""
    folders = rel.parts[:-1]
    for k, part in enumerate(folders):
        label = LABEL_NAMES.get(part.lower())
        if label is None:
            continue
        below = folders[k + 1 :]
        return label, (below[0] if label == 1 and below else None)
    return None, None


def label_of(path: Path, root: Path) -> int | None:
    """0 for files under a ``real/`` folder, 1 under ``fake/``, else None."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return None
    return classify(rel)[0]


def from_folder(root: Path, outside: list[str] | None = None) -> list[Item]:
    """Every image/video under a ``real/`` or ``fake/`` folder of ``root``; a link that leads out
    of ``root`` is skipped (its name appended to ``outside``)."""
    items = []
    base = root.resolve()
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in IMAGE_EXTS | VIDEO_EXTS:
            continue
        rel = p.relative_to(root)
        if p.is_symlink() and not p.resolve().is_relative_to(base):
            if outside is not None:
                outside.append(rel.as_posix())
            continue
        label, method = classify(rel)
        if label is not None:
            items.append(Item(p, rel.as_posix(), label, method))
    return items


def from_list(path: Path) -> list[Item]:
    """The items of a CSV/JSON list of ``path,label[,method]`` (paths relative to the list)."""
    try:
        if path.suffix.lower() == ".json":
            rows = read_json(path, error=ValueError)
        else:
            with open(path, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable CSV/JSON list of path,label ({exc})") from exc
    if (
        not isinstance(rows, list)
        or not rows
        or not all(isinstance(r, dict) and "path" in r and "label" in r for r in rows)
    ):
        raise DataError(f"{path}: needs rows with 'path' and 'label' (0/1 or real/fake)")
    items = []
    for r in rows:
        label = _LIST_LABELS.get(str(r["label"]).strip().lower())
        if label is None:
            raise DataError(f"{path}: label {r['label']!r} of {r['path']} is not 0/1 or real/fake")
        p = (path.parent / str(r["path"])).resolve()
        if not p.is_relative_to(path.parent.resolve()):
            raise DataError(
                f"{path}: {str(r['path'])[:120]!r} is outside the list's folder; keep the list beside or above its files"
            )
        items.append(Item(p, str(r["path"]), label, (r.get("method") or None) if label == 1 else None))
    return items
