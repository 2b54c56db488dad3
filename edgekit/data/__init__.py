"""Data: one discovery of labels (``labels``), one decoding path (``decode``), one
preprocessing into model tensors with seeded splits (``tensors``).
"""

from __future__ import annotations

from edgekit.data.decode import Frames, decode, read_image
from edgekit.data.labels import ARRAY_EXTS, IMAGE_EXTS, VIDEO_EXTS, Item, classify, label_of
from edgekit.data.layouts import discover
from edgekit.data.tensors import DataSet, find_files, load_dataset, preprocess_image, split_files

__all__ = [
    "ARRAY_EXTS",
    "IMAGE_EXTS",
    "VIDEO_EXTS",
    "DataSet",
    "Frames",
    "Item",
    "classify",
    "decode",
    "discover",
    "find_files",
    "label_of",
    "load_dataset",
    "preprocess_image",
    "read_image",
    "split_files",
]
