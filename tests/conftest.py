"""Shared fixtures: tiny image folders, tiny models and one shared export of them."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TQDM_DISABLE", "1")

TINY_ARCH = "tests.models:build_tiny"
TINY_SHAPE = "1x3x32x32"


def write_images(root: Path, count: int, size: int = 32, seed: int = 5) -> Path:
    """Write ``count`` synthetic PNGs split into real/ and fake/ under ``root``."""
    from PIL import Image

    from edgekit.sample.synth import make_image

    for i in range(count):
        fake = bool(i % 2)
        folder = root / ("fake" if fake else "real")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(make_image(seed, i, fake, size)).save(folder / f"img_{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 labelled 32x32 images."""
    return write_images(tmp_path_factory.mktemp("images"), 40)


@pytest.fixture(scope="session")
def tiny_state_dict(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's weights saved as a plain state dict."""
    import torch

    from tests.models import build_tiny

    path = tmp_path_factory.mktemp("sd") / "tiny.pth"
    torch.save(build_tiny().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def tiny_pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model as a torch.export archive."""
    import torch

    from tests.models import build_tiny

    path = tmp_path_factory.mktemp("pt2") / "tiny.pt2"
    ep = torch.export.export(build_tiny(), (torch.zeros(1, 3, 32, 32),))
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    path.write_bytes(buf.getvalue())
    return path


def require_system_tool(missing: str | None) -> None:
    """Stop a test that needs a Debian tool ``.ci/run`` installs (adb, chromium, junit4).

    ``missing`` says what is absent (None: all there). In CI a missing tool is a failure,
    never a skip; on a developer machine without it the test is skipped with that reason.
    """
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must have it (.ci/run installs it): {missing}")
    pytest.skip(missing)


def npy_bytes(arr: np.ndarray) -> bytes:
    """Serialized .npy content of ``arr``."""
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()
