"""A model and its labelled data, prepared once for pruning, sensitivity and optimize.

``ModelData`` says where the model, its labelled data and its calibration images are;
:func:`prepare` loads them into a :class:`Prepared` (a trainable module, an export
context, preprocessed train/validation arrays and the output spec).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit._capture import captured_output
from edgekit.data.tensors import stratified_pick
from edgekit.errors import DataError, UsageError
from edgekit.modelmeta import resolve_preprocess
from edgekit.spec import InputSpec, ModelSource, OutputKind, OutputSpec, Preprocess

if TYPE_CHECKING:
    import torch

    from edgekit.exporters.registry import ExportContext


def trainable_module(loaded: Any, source: ModelSource) -> torch.nn.Module:
    """The loaded module, made runnable at any batch size.

    ``torch.export`` programs are specialised to the batch they were exported with and
    check it before every call; fine-tuning needs batches, so for ``.pt2`` files the
    guards are left out (edgekit feeds shapes it checked itself).
    """
    import torch

    if loaded.kind != "pt2":
        return loaded.module  # type: ignore[no-any-return]
    with captured_output():
        module = torch.export.load(str(source.path)).module(check_guards=False)
    for key, hook in list(module._forward_pre_hooks.items()):
        if "input_constraints" in getattr(hook, "__name__", ""):
            del module._forward_pre_hooks[key]
    return module  # type: ignore[no-any-return]


def outputs_of(module: torch.nn.Module, x: np.ndarray, batch: int = 64) -> torch.Tensor:
    """Raw model outputs (N, k) for a batch of inputs, without gradients."""
    import torch

    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            y = module(torch.from_numpy(x[i : i + batch]))
            y = y[0] if isinstance(y, (tuple, list)) else y
            outs.append(y.reshape(len(y), -1).float())
    return torch.cat(outs)


def scores_of(module: torch.nn.Module, x: np.ndarray, kind: OutputKind, classes: int, batch: int = 64) -> np.ndarray:  # fmt: skip
    """Fake-class scores (probabilities) for a batch of inputs."""
    import torch

    out = outputs_of(module, x, batch)
    if classes == 1:
        score = out[:, 0] if kind is OutputKind.PROBS else torch.sigmoid(out[:, 0])
    else:
        score = out[:, 1] if kind is OutputKind.PROBS else torch.softmax(out, dim=1)[:, 1]
    result: np.ndarray = score.numpy().astype(np.float64)
    return result


def auc_of(module: torch.nn.Module, x: np.ndarray, y: np.ndarray, kind: OutputKind, classes: int) -> float | None:  # fmt: skip
    """ROC AUC of the module on (x, y); None with a single class."""
    from sklearn.metrics import roc_auc_score

    if len(set(y.tolist())) < 2:
        return None
    return float(roc_auc_score(y, scores_of(module, x, kind, classes)))


@dataclass
class LabelledArrays:
    """Preprocessed model inputs (NCHW float32) with labels, split into train and validation."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    description: dict[str, Any]


def sample_arrays(n_train: int = 2000, n_val: int = 500) -> LabelledArrays:
    """The bundled sample's synthetic data: training images, and the held-out ones `edgekit sample` writes."""
    from edgekit.sample import IMAGE_SIZE, MEAN, SAMPLE_SEED, STD, TRAIN_SEED
    from edgekit.sample.synth import make_batch

    def prep(images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        out: np.ndarray = ((x - MEAN) / STD).astype(np.float32)
        return out

    xt, yt = make_batch(TRAIN_SEED, 0, n_train, IMAGE_SIZE)
    xv, yv = make_batch(SAMPLE_SEED, 0, n_val, IMAGE_SIZE)
    desc = {"source": "edgekit sample (synthetic)", "train": n_train, "val": n_val}
    return LabelledArrays(prep(xt), yt, prep(xv), yv, desc)


#: frames prune/sensitivity/optimize hold at most (the rest of a large data set is not read)
MAX_FRAMES = 4000
_VIDEO_FRAMES = 4


def folder_arrays(
    data: Path, pre: Preprocess, val_fraction: float, seed: int, max_frames: int = MAX_FRAMES
) -> LabelledArrays:
    """Images (and video frames) under real/ and fake/, preprocessed and split per file.

    Fine-tuning and scoring passes need the arrays in memory, so a large data set is
    subsampled first: files are picked (seeded, keeping the real/fake and per-method shares)
    until about ``max_frames`` frames, then decoded through the same chunked path as eval.
    """
    from edgekit.data.decode import Frames, chunks
    from edgekit.data.layouts import discover
    from edgekit.data.tensors import preprocess_image
    from edgekit.spec import Layout

    items = discover(data)
    cost = [_VIDEO_FRAMES if it.is_video else 1 for it in items]
    if sum(cost) > max_frames:
        keep = stratified_pick(
            [(it.label, it.method) for it in items], max(2, max_frames * len(items) // sum(cost)), seed
        )
        chosen = [items[i] for i in keep]
    else:
        chosen = items
    frames = Frames(np.zeros((0, pre.height, pre.width, 3), np.uint8))
    parts: list[np.ndarray] = []
    for chunk in chunks(chosen, pre, frames=_VIDEO_FRAMES):
        frames.merge(chunk)
        if len(chunk.images):
            parts.append(np.stack([preprocess_image(img, pre, Layout.NCHW) for img in chunk.images]))
    if not parts:
        first = frames.skipped[0][1] if frames.skipped else "no files"
        raise DataError(f"none of the files under {data} could be decoded (first: {first})")
    x = np.concatenate(parts).astype(np.float32, copy=False)
    y = np.asarray(frames.labels, dtype=np.int64)
    if len(set(y.tolist())) < 2:
        raise DataError(f"--data {data} has only one class; pruning needs real and fake examples")
    videos = sorted(set(frames.video_ids))
    label_of_video = dict(zip(frames.video_ids, frames.labels, strict=True))
    n_val = max(1, round(len(videos) * val_fraction))
    # split per file or video (no frame of a video on both sides), stratified by label
    val_ids = {videos[i] for i in stratified_pick([label_of_video[v] for v in videos], n_val, seed)}
    is_val = np.array([v in val_ids for v in frames.video_ids])
    if is_val.all() or not is_val.any():
        raise DataError(f"--data {data}: too few files to hold out a validation split; add more")
    desc = {
        "source": str(data),
        "train": int((~is_val).sum()),
        "val": int(is_val.sum()),
        "skipped": len(frames.skipped),
        "files_used": len(chosen),
        "files_found": len(items),
    }
    return LabelledArrays(x[~is_val], y[~is_val], x[is_val], y[is_val], desc)


@dataclass(frozen=True)
class ModelData:
    """The model, its labelled data and calibration images, as `sensitivity` and `optimize` take them."""

    source: ModelSource
    data: Path | None = None  # real/ and fake/ folders; None: the bundled sample's images
    calib: Path | None = None  # None: the training split of ``data``
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    input_shape: tuple[int, ...] | None = None


@dataclass
class Prepared:
    """A loaded model with its data, shared by sensitivity and optimize."""

    module: Any
    ctx: ExportContext
    data: LabelledArrays
    output: OutputSpec
    source: dict[str, Any]

    @property
    def kind(self) -> OutputKind:
        """Logits or probabilities."""
        return self.output.kind

    @property
    def classes(self) -> int:
        """1 logit or 2 classes."""
        return self.output.classes


def prepare(md: ModelData, val_samples: int) -> Prepared:
    """Load the model (trainable form), its labelled data and calibration inputs."""
    from edgekit.exporters.registry import ExportContext
    from edgekit.loading import load_model, probe_output

    loaded = load_model(md.source)
    module = trainable_module(loaded, md.source)
    shape = md.input_shape or loaded.recorded_input_shape or (1, 3, 224, 224)
    pre, _ = resolve_preprocess(shape[2], shape[3], loaded.preprocess, md.mean, md.std)
    arrays = sample_arrays() if md.data is None else folder_arrays(md.data, pre, 0.5, 0)
    keep = stratified_pick(arrays.y_val.tolist(), val_samples, 0)  # both classes, whatever the order
    arrays.x_val, arrays.y_val = arrays.x_val[keep], arrays.y_val[keep]
    shape = (1, *arrays.x_val.shape[1:])
    output = probe_output(module, InputSpec(shape=shape), OutputSpec())
    if md.calib is not None:
        from edgekit.data.labels import label_of
        from edgekit.data.tensors import find_files, load_dataset, split_files

        files = find_files(md.calib)
        if not files:
            raise UsageError(f"--calib {md.calib} holds no images")
        chosen, _ = split_files(files, 200, 0, 0, [label_of(f, md.calib) for f in files])
        calib_x = load_dataset(chosen, md.calib, pre, InputSpec(shape=shape)).inputs
    else:
        calib_x = arrays.x_train[stratified_pick(arrays.y_train.tolist(), 200, 0)]
    ctx = ExportContext(module=loaded.module, input_spec=InputSpec(shape=shape), calibration=calib_x)
    desc = {"path": loaded.path, "sha256": loaded.sha256, "kind": loaded.kind}
    return Prepared(module, ctx, arrays, output, desc)
