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


def split_files(
    files: Sequence[Path], calib_n: int, parity_n: int, seed: int
) -> tuple[list[Path], list[Path]]:
    """Deterministically shuffle and split into (calibration, held-out parity) files.

    With enough files the split is exactly ``calib_n`` + ``parity_n``. With fewer, a
    quarter (at most ``parity_n``) is held out for parity and the rest calibrates.
    """
    order = list(files)
    random.Random(seed).shuffle(order)
    if len(order) >= calib_n + parity_n:
        return order[:calib_n], order[calib_n : calib_n + parity_n]
    n_parity = min(parity_n, len(order) // 4) if len(order) >= 2 else 0
    if n_parity == 0 and len(order) >= 2:
        n_parity = 1
    return order[n_parity:][:calib_n], order[:n_parity]


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
