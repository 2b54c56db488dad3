"""Model-ready tensors: preprocessing, data sets of images or preprocessed arrays, splits.

Used for calibration, parity and (later) evaluation, so every consumer sees the
same tensors. Unreadable or wrongly shaped files are skipped and counted, never
silently replaced by other data.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.data.decode import read_image
from edgekit.data.labels import ARRAY_EXTS, IMAGE_EXTS, label_of
from edgekit.errors import DataError
from edgekit.spec import InputSpec, Layout, Preprocess


@dataclass(frozen=True)
class DataSet:
    """Model-ready inputs (N, *sample_shape) float32 with where each came from."""

    inputs: np.ndarray
    names: tuple[str, ...]
    labels: tuple[int | None, ...]
    skipped: tuple[tuple[str, str], ...] = field(default=())

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def class_balance(self) -> dict[str, int] | None:
        """Counts of real/fake when every sample is labelled by its folder, else None."""
        if not self.labels or any(label is None for label in self.labels):
            return None
        counts = Counter(self.labels)
        return {"real": counts.get(0, 0), "fake": counts.get(1, 0)}


def find_files(root: Path) -> list[Path]:
    """Images and arrays below ``root`` (recursive), sorted for determinism."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"data folder {root} does not exist; pass an existing folder of images or .npy files")
    if root.is_file():
        return [root] if root.suffix.lower() in IMAGE_EXTS | ARRAY_EXTS else []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS | ARRAY_EXTS)


def _allocate(counts: dict[Any, int], n: int) -> dict[Any, int]:
    """``n`` split over groups in proportion to their sizes (largest remainder), every non-empty
    group getting at least one while ``n`` allows, and no group more than it has."""
    total = sum(counts.values())
    n = min(n, total)
    if n <= 0 or total == 0:
        return {k: 0 for k in counts}
    exact = {k: n * c / total for k, c in counts.items()}
    share = {k: min(counts[k], int(exact[k])) for k in counts}
    for k in sorted(counts, key=lambda k: counts[k]):  # the smallest class first: never left out
        if share[k] == 0 and counts[k] > 0 and sum(share.values()) < n:
            share[k] = 1
    by_remainder = sorted(counts, key=lambda k: exact[k] - int(exact[k]), reverse=True)
    while sum(share.values()) < n:
        grew = False
        for k in by_remainder:
            if sum(share.values()) < n and share[k] < counts[k]:
                share[k] += 1
                grew = True
        if not grew:
            break
    while sum(share.values()) > n:  # the minimums can overshoot a tiny n: take from the largest
        k = max(share, key=lambda k: share[k])
        share[k] -= 1
    return share


def stratified_pick(labels: Sequence[Any], n: int, seed: int) -> list[int]:
    """Indices of ``n`` items drawn with ``seed``, keeping the class proportions (each class
    present when ``n`` allows); in the original order. Unlabelled items (None) form their own group."""
    groups: dict[Any, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    rng = random.Random(seed)
    picked: list[int] = []
    for key, count in _allocate({k: len(v) for k, v in groups.items()}, n).items():
        members = list(groups[key])
        rng.shuffle(members)
        picked += members[:count]
    return sorted(picked)


def split_files(
    files: Sequence[Path], calib_n: int, parity_n: int, seed: int, labels: Sequence[int | None] | None = None
) -> tuple[list[Path], list[Path]]:
    """Split into (calibration, held-out parity) files, seeded and stratified by ``labels``.

    With enough files the split is exactly ``calib_n`` + ``parity_n``; with fewer, a
    quarter (at most ``parity_n``) is held out for parity and the rest calibrates. Both
    parts keep the real/fake proportions, so a 1 real : 4 fake folder never yields a
    one-class parity or calibration set (``labels`` aligned with ``files``; None: unlabelled).
    """
    order = list(files)
    tags = list(labels) if labels is not None else [None] * len(order)
    if len(order) >= calib_n + parity_n:
        n_parity = parity_n
    else:
        n_parity = min(parity_n, len(order) // 4) if len(order) >= 2 else 0
        if n_parity == 0 and len(order) >= 2:
            n_parity = 1
    held = set(stratified_pick(tags, n_parity, seed))
    rest = [i for i in range(len(order)) if i not in held]
    calib = [rest[j] for j in stratified_pick([tags[i] for i in rest], calib_n, seed + 1)]
    rng = random.Random(seed)
    calib_files = [order[i] for i in calib]
    parity_files = [order[i] for i in sorted(held)]
    rng.shuffle(calib_files)
    rng.shuffle(parity_files)
    return calib_files, parity_files


def preprocess_image(img: np.ndarray, pre: Preprocess, layout: Layout) -> np.ndarray:
    """uint8 HxWx3 RGB (already resized) -> float32 model input in ``layout``."""
    scaled = img.astype(np.float32) * np.float32(pre.scale)
    x: np.ndarray = (scaled - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
    if layout is Layout.NCHW:
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x, dtype=np.float32)


def _read_arrays(path: Path, sample_shape: tuple[int, ...]) -> list[np.ndarray]:
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            arrays = [z[k] for k in sorted(z.files)]
    else:
        arrays = [np.load(path, allow_pickle=False)]
    out: list[np.ndarray] = []
    for arr in arrays:
        if tuple(arr.shape) == sample_shape:
            out.append(arr.astype(np.float32))
        elif arr.ndim == len(sample_shape) + 1 and tuple(arr.shape[1:]) == sample_shape:
            out.extend(a.astype(np.float32) for a in arr)
        else:
            raise ValueError(
                f"array shape {tuple(arr.shape)} does not match input sample shape {sample_shape}"
            )
    return out


def load_dataset(files: Sequence[Path], root: Path, pre: Preprocess, spec: InputSpec) -> DataSet:
    """Read ``files`` into one float32 batch; unreadable or misshapen files are skipped and listed."""
    inputs: list[np.ndarray] = []
    names: list[str] = []
    labels: list[int | None] = []
    skipped: list[tuple[str, str]] = []
    for path in files:
        rel = str(path.relative_to(root)) if path != root and root in path.parents else path.name
        try:
            if path.suffix.lower() in ARRAY_EXTS:
                arrays = _read_arrays(path, spec.sample_shape)
            else:
                arrays = [preprocess_image(read_image(path, pre), pre, spec.layout)]
        except Exception as exc:
            skipped.append((rel, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]))
            continue
        for k, arr in enumerate(arrays):
            inputs.append(arr)
            names.append(rel if len(arrays) == 1 else f"{rel}[{k}]")
            labels.append(label_of(path, root))
    batch = np.stack(inputs) if inputs else np.zeros((0, *spec.sample_shape), np.float32)
    return DataSet(batch, tuple(names), tuple(labels), tuple(skipped))
