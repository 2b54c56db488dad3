"""Procedural face-like images; fakes carry self-blended-image (SBI) style artifacts.

A "real" image is a smooth synthetic face (skin ellipse, eyes, brows, nose, mouth,
hair, background) with camera-like sensor noise. A "fake" is built the way
self-blended images are: a copy of the same face is resampled (down/up-scaled,
which removes the sensor noise), colour-shifted and slightly warped, then blended
back through a blurred face mask. What a detector has to learn is the
inconsistency of noise and colour inside vs outside the blend boundary, as with
real face swaps. Artifact strength is random, so some fakes are hard.

Everything is a pure function of ``(seed, index)``: the same call gives the same
pixels on every machine (numpy's PCG64 and float64 math only).
"""

from __future__ import annotations

import numpy as np

LABELS = ("real", "fake")


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64([seed, index]))


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1] by bilinear upsampling of a coarse grid."""
    grid = rng.random((cells + 1, cells + 1))
    t = np.linspace(0, cells, size, endpoint=False)
    i = t.astype(int)
    f = t - i
    a = grid[i][:, i] * (1 - f)[None, :] + grid[i][:, i + 1] * f[None, :]
    b = grid[i + 1][:, i] * (1 - f)[None, :] + grid[i + 1][:, i + 1] * f[None, :]
    out: np.ndarray = a * (1 - f)[:, None] + b * f[:, None]
    return out


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    d: np.ndarray = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    return d


def _box_blur(img: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur with edge padding (applied along the first two axes)."""
    if radius <= 0:
        return img
    k = 2 * radius + 1
    out = img
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius + 1, radius)
        c = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis)
        hi = np.take(c, np.arange(k, k + out.shape[axis]), axis=axis)
        lo = np.take(c, np.arange(0, out.shape[axis]), axis=axis)
        out = (hi - lo) / k
    return out


def _resample(img: np.ndarray, factor: float) -> np.ndarray:
    """Down-scale by ``factor`` then back up (bilinear): the resampling trace of a face swap."""
    size = img.shape[0]
    small = max(8, round(size * factor))
    src = np.linspace(0, size - 1, small)
    idx = np.clip(np.round(src).astype(int), 0, size - 1)
    down = _box_blur(img, max(0, round(0.5 / factor) - 1))[idx][:, idx]
    t = np.linspace(0, small - 1, size)
    i = np.clip(t.astype(int), 0, small - 2)
    f = (t - i)[:, None, None]
    rows = down[i] * (1 - f) + down[i + 1] * f
    g = (t - i)[None, :, None]
    out: np.ndarray = rows[:, i] * (1 - g) + rows[:, i + 1] * g
    return out


def _face(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A clean face image (float64 HxWx3 in [0,1]) and its face-region distance map."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    bg_a, bg_b = rng.random(3), rng.random(3)
    ramp = (yy / size)[..., None]
    img = bg_a * (1 - ramp) + bg_b * ramp
    img += 0.15 * (_smooth_noise(rng, size, 4)[..., None] - 0.5)

    cy, cx = size * rng.uniform(0.48, 0.56), size * rng.uniform(0.44, 0.56)
    ry, rx = size * rng.uniform(0.30, 0.38), size * rng.uniform(0.22, 0.29)
    skin = np.array([0.95, 0.75, 0.6]) * rng.uniform(0.35, 1.0) + rng.normal(0, 0.04, 3)
    face_d = _ellipse(yy, xx, cy, cx, ry, rx)
    hair_d = _ellipse(yy, xx, cy - ry * 0.35, cx, ry * 0.85, rx * 1.12)
    hair = rng.random(3) * 0.4
    img = np.where((hair_d < 1)[..., None] & (yy < cy - ry * 0.2)[..., None], hair, img)
    shade = 1.0 - 0.25 * np.clip(face_d, 0, 1) + 0.1 * (_smooth_noise(rng, size, 6) - 0.5)
    img = np.where((face_d < 1)[..., None], skin * shade[..., None], img)

    eye_y = cy - ry * rng.uniform(0.12, 0.25)
    eye_dx = rx * rng.uniform(0.35, 0.5)
    iris = rng.random(3) * 0.5
    for sx in (-1, 1):
        ex = cx + sx * eye_dx
        white = _ellipse(yy, xx, eye_y, ex, ry * 0.07, rx * 0.2) < 1
        img[white] = [0.92, 0.92, 0.9]
        img[_ellipse(yy, xx, eye_y, ex, ry * 0.06, rx * 0.08) < 1] = iris
        brow = _ellipse(yy, xx, eye_y - ry * 0.17, ex, ry * 0.03, rx * 0.24) < 1
        img[brow] = hair
    nose = _ellipse(yy, xx, cy + ry * 0.12, cx, ry * 0.18, rx * 0.07) < 1
    img[nose] *= 0.88
    mouth_y = cy + ry * rng.uniform(0.45, 0.6)
    mouth = _ellipse(yy, xx, mouth_y, cx, ry * rng.uniform(0.04, 0.09), rx * rng.uniform(0.3, 0.45)) < 1
    img[mouth] = np.array([0.6, 0.2, 0.25]) * rng.uniform(0.6, 1.0)
    return img, face_d


def _sensor_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    noise: np.ndarray = rng.normal(0.0, sigma, shape)
    return noise


#: ranges of the self-blending per manipulation family (None: the mix the detector was trained on):
#: source resampling, colour-shift strength, mask growth, mask blur radius, blend opacity
FAMILIES: dict[str | None, dict[str, tuple[float, float]]] = {
    None: {"resample": (0.5, 1.0), "strength": (0.0, 1.0), "grow": (0.55, 1.0), "blur": (1, 7), "alpha": (0.4, 1.0)},
    # a low-resolution generated face over the whole face
    "Deepfakes": {"resample": (0.5, 0.65), "strength": (0.3, 0.7), "grow": (0.85, 1.0), "blur": (2, 5), "alpha": (0.7, 1.0)},
    # expression transfer: a sharp source, a smaller blended region
    "Face2Face": {"resample": (0.8, 1.0), "strength": (0.2, 0.6), "grow": (0.55, 0.7), "blur": (3, 7), "alpha": (0.6, 1.0)},
    # a colour-mismatched swap with a hard seam
    "FaceSwap": {"resample": (0.6, 0.9), "strength": (0.7, 1.0), "grow": (0.9, 1.0), "blur": (1, 3), "alpha": (0.8, 1.0)},
    # a subtle re-rendered texture
    "NeuralTextures": {"resample": (0.75, 1.0), "strength": (0.0, 0.4), "grow": (0.6, 0.9), "blur": (4, 7), "alpha": (0.4, 0.8)},
}  # fmt: skip


def make_image(seed: int, index: int, fake: bool, size: int = 128, family: str | None = None) -> np.ndarray:
    """Return one uint8 RGB image (size x size x 3), deterministic in (seed, index, fake, family)."""
    rng = _rng(seed, index * 2 + int(fake))
    img, face_d = _face(rng, size)
    sigma = rng.uniform(0.015, 0.035)
    real = img + _sensor_noise(rng, img.shape, sigma)
    if not fake:
        return _to_uint8(real)
    r = FAMILIES[family]
    # Self-blended fake: the "source" face is the same face, resampled and colour shifted.
    strength = rng.uniform(*r["strength"])
    src = _resample(real, rng.uniform(*r["resample"]))
    src = src * (1 + rng.normal(0, 0.06 * strength + 0.01, 3)) + rng.normal(0, 0.04 * strength, 3)
    shift = rng.integers(-2, 3, 2)
    src = np.roll(src, tuple(int(s) for s in shift), axis=(0, 1))
    grow = rng.uniform(*r["grow"])
    mask = (face_d < grow).astype(np.float64)
    mask = _box_blur(mask[..., None], int(rng.integers(int(r["blur"][0]), int(r["blur"][1]))))[..., 0]
    mask *= rng.uniform(*r["alpha"])
    blended = mask[..., None] * src + (1 - mask[..., None]) * real
    # A little fresh noise everywhere, weaker than the camera's: hides the artifact for some.
    blended += _sensor_noise(rng, img.shape, sigma * rng.uniform(0.0, 1.0))
    return _to_uint8(blended)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    out: np.ndarray = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return out


def make_batch(seed: int, start: int, count: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """``count`` images alternating real/fake from ``start``; returns (uint8 NHWC, labels)."""
    images = np.empty((count, size, size, 3), np.uint8)
    labels = np.empty(count, np.int64)
    for k in range(count):
        i = start + k
        fake = bool(i % 2)
        images[k] = make_image(seed, i, fake, size)
        labels[k] = int(fake)
    return images, labels
