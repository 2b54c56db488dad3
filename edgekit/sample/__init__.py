"""The bundled sample detector and its procedurally generated data set."""

from __future__ import annotations

#: Side of the square RGB input the sample detector was trained on.
IMAGE_SIZE = 128
#: Per-channel normalisation: x = (pixel / 255 - MEAN) / STD.
MEAN = 0.5
STD = 0.5
#: Seeds of the training images and of the held-out images `edgekit sample` writes.
TRAIN_SEED = 20261123
SAMPLE_SEED = 777
