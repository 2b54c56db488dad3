"""`edgekit sample`: write the bundled detector as a .pt2 and a labelled sample data set."""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit._io import atomic_write_bytes, ensure_output_dir
from edgekit.errors import UsageError
from edgekit.modelmeta import save_pt2
from edgekit.sample import IMAGE_SIZE, MEAN, SAMPLE_SEED, STD
from edgekit.sample.synth import LABELS, make_image

if TYPE_CHECKING:
    from edgekit.sample.model import SampleDetector

MODEL_NAME = "sample_detector.pt2"
DATA_DIR = "data"


@dataclass(frozen=True)
class SampleFiles:
    """What `write_sample` produced."""

    model: Path
    data: Path
    real: int
    fake: int


def load_sample_detector() -> SampleDetector:
    """The bundled detector with its trained weights, in eval mode."""
    import torch

    from edgekit.sample.model import SampleDetector

    raw = resources.files("edgekit.sample").joinpath("weights.pt").read_bytes()
    state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    model = SampleDetector()
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


def write_sample(out_dir: Path, count: int = 500, seed: int = SAMPLE_SEED) -> SampleFiles:
    """Write ``sample_detector.pt2`` and ``data/{real,fake}/*.png`` (``count`` images) to ``out_dir``."""
    import torch
    from PIL import Image

    if count < 2:
        raise UsageError(f"--count must be at least 2 (one real, one fake), got {count}")
    out = ensure_output_dir(out_dir)
    # the .pt2 carries its preprocessing, so every command normalises as the detector was trained
    save_pt2(load_sample_detector(), out / MODEL_NAME, example_input=torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE),
             mean=(MEAN,), std=(STD,))  # fmt: skip
    counts = {label: 0 for label in LABELS}
    for i in range(count):
        fake = bool(i % 2)
        label = LABELS[int(fake)]
        folder = out / DATA_DIR / label
        ensure_output_dir(folder)
        png = io.BytesIO()
        Image.fromarray(make_image(seed, i, fake, IMAGE_SIZE)).save(png, format="PNG")
        atomic_write_bytes(folder / f"{label}_{i:05d}.png", png.getvalue())
        counts[label] += 1
    return SampleFiles(out / MODEL_NAME, out / DATA_DIR, counts["real"], counts["fake"])
