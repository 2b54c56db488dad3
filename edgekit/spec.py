"""Frozen specs that flow one way: CLI -> library. Each validates itself on construction."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from edgekit.errors import UsageError


class Layout(StrEnum):
    """Memory layout of the image input tensor."""

    NCHW = "nchw"
    NHWC = "nhwc"


class OutputKind(StrEnum):
    """What the detector returns: raw logits or probabilities."""

    LOGITS = "logits"
    PROBS = "probs"


DETECTOR = "blazeface-full-range"
MIN_SCORE = 0.6  # MediaPipe's score threshold for that model


@dataclass(frozen=True)
class FaceCrop:
    """How frames are cropped before resizing; recorded in the manifest's preprocessing."""

    margin: float = 1.3
    detector: str = DETECTOR
    min_score: float = MIN_SCORE

    def __post_init__(self) -> None:
        if not 1.0 <= self.margin <= 4.0:
            raise UsageError(
                f"face-crop margin {self.margin}: use a value between 1.0 and 4.0 (1.3 is usual)"
            )
        if self.detector != DETECTOR:
            raise UsageError(f"face detector {self.detector!r} is not known; edgekit uses {DETECTOR}")
        if not 0.0 < self.min_score < 1.0:
            raise UsageError(f"face min_score {self.min_score}: a number in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the manifest."""
        return {"margin": self.margin, "detector": self.detector, "min_score": self.min_score}

    @classmethod
    def from_dict(cls, d: Any) -> FaceCrop:
        """Rebuild from a file's data; UsageError names what is wrong."""
        if not isinstance(d, dict) or set(d) - {"margin", "detector", "min_score"}:
            raise UsageError("face_crop must be an object with margin, detector and min_score")
        margin, score = d.get("margin", 1.3), d.get("min_score", MIN_SCORE)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (margin, score)):
            raise UsageError("face_crop margin and min_score must be numbers")
        return cls(float(margin), str(d.get("detector", DETECTOR)), float(score))


@dataclass(frozen=True)
class Preprocess:
    """Pixels -> model input. Recorded in the manifest so calibration, eval and device agree.

    ``x = (resize(rgb) * scale - mean) / std`` per channel, then laid out as ``layout``.
    """

    height: int = 224
    width: int = 224
    resize: str = "bilinear"
    color: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    #: crop the largest face (squared, widened by a margin) before resizing; None: whole frames
    face_crop: FaceCrop | None = None

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise UsageError(f"input size must be positive, got {self.height}x{self.width}")
        if self.resize not in ("bilinear", "bicubic", "nearest"):
            raise UsageError(f"unknown resize {self.resize!r}; use bilinear, bicubic or nearest")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            raise UsageError("mean and std need 3 values each and std must be non-zero")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for the manifest (no ``face_crop`` key for whole frames)."""
        out = asdict(self)
        if self.face_crop is None:
            out.pop("face_crop")
        return out

    @classmethod
    def from_dict(cls, d: Any) -> Preprocess:
        """Rebuild from data read back from a file, checking every field's type and range.

        Raises UsageError naming the problem (callers add which file it came from).
        """
        try:
            fields = {
                k: d[k] for k in ("height", "width", "resize", "color", "scale", "mean", "std") if k in d
            }
            crop = FaceCrop.from_dict(d["face_crop"]) if d.get("face_crop") is not None else None
            pre = cls(**{**fields, "mean": tuple(d["mean"]), "std": tuple(d["std"]), "face_crop": crop})
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"not a preprocessing record ({exc})") from None
        numbers = (pre.scale, *pre.mean, *pre.std)
        if not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in numbers
        ):
            raise UsageError("scale, mean and std must be finite numbers")
        # a pixel of 0..255 scaled and normalised must stay an ordinary float: a stored scale of
        # 1e300 (or a std of 1e-300) would feed inf to every model without a word
        if not (
            0 < pre.scale <= 1.0
            and all(abs(m) <= 1e3 for m in pre.mean)
            and all(1e-6 <= abs(s) <= 1e3 for s in pre.std)
        ):
            raise UsageError("scale must be in (0, 1], |mean| at most 1000 and |std| between 1e-6 and 1000")
        if (
            not all(isinstance(n, int) and 0 < n <= 8192 for n in (pre.height, pre.width))
            or pre.color != "RGB"
        ):
            raise UsageError("height and width must be integers up to 8192, color RGB")
        return pre


@dataclass(frozen=True)
class InputSpec:
    """The model's single image input: NCHW or NHWC, float32."""

    shape: tuple[int, ...] = (1, 3, 224, 224)
    layout: Layout = Layout.NCHW
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if len(self.shape) != 4 or any(d <= 0 for d in self.shape):
            raise UsageError(f"input shape must be 4 positive dims like 1x3x224x224, got {self.shape}")
        if self.channels not in (1, 3):
            raise UsageError(
                f"input shape {self.shape} has {self.channels} channels for layout {self.layout}; "
                "expected 1 or 3 (use --layout nhwc for NxHxWxC)"
            )

    @property
    def channels(self) -> int:
        """Number of image channels."""
        return self.shape[1] if self.layout is Layout.NCHW else self.shape[3]

    @property
    def hw(self) -> tuple[int, int]:
        """(height, width) of the image."""
        return (
            (self.shape[2], self.shape[3]) if self.layout is Layout.NCHW else (self.shape[1], self.shape[2])
        )

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample (the shape without its batch dimension)."""
        return tuple(self.shape[1:])


@dataclass(frozen=True)
class OutputSpec:
    """The detector output: 1 logit (fake score = sigmoid) or 2 classes (fake = index 1)."""

    kind: OutputKind = OutputKind.LOGITS
    classes: int = 1
    positive_index: int = 1

    def __post_init__(self) -> None:
        if self.classes not in (1, 2):
            raise UsageError(f"a binary detector has 1 or 2 outputs, this one has {self.classes}")


@dataclass(frozen=True)
class Tolerance:
    """Pass/fail bar for one precision's parity against the PyTorch reference."""

    max_score_diff: float | None = None
    max_flip_rate: float = 0.0
    min_sqnr_db: float | None = None

    def __post_init__(self) -> None:
        # a NaN bar passes every comparison against it: a verdict that can never fail
        for key, value in asdict(self).items():
            if value is not None and not math.isfinite(value) and not (key == "min_sqnr_db" and value < 0):
                example = 20 if key == "min_sqnr_db" else 0.01
                raise UsageError(
                    f"tolerance {key}={value} is not a finite number: give one, e.g. {key}={example}"
                )
        if not 0.0 <= self.max_flip_rate <= 1.0:
            raise UsageError(f"tolerance max_flip_rate={self.max_flip_rate} is not a rate in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for the manifest."""
        return asdict(self)


#: Defaults per precision: fp32 tight, fp16 looser, integer judged by flips and SQNR.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_score_diff=1e-4, max_flip_rate=0.0),
    "fp16": Tolerance(max_score_diff=2e-2, max_flip_rate=0.01),
    "int8": Tolerance(max_flip_rate=0.01, min_sqnr_db=15.0),
    "mixed": Tolerance(max_flip_rate=0.02, min_sqnr_db=10.0),
}


@dataclass(frozen=True)
class ModelSource:
    """Where the model comes from and how it may be loaded."""

    path: Path | None = None
    arch: str | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    trust_pickle: bool = False


@dataclass(frozen=True)
class ExportSpec:
    """Everything `edgekit export` needs; built by the CLI, consumed by :func:`edgekit.exporting.export`."""

    source: ModelSource
    out_dir: Path
    variants: tuple[str, ...] = ("tflite_fp32",)
    input_shape: tuple[int, ...] | None = None
    layout: Layout = Layout.NCHW
    output: OutputSpec = field(default_factory=OutputSpec)
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    resize: str | None = None  # None: the model's stored filter, else bilinear
    calib_dir: Path | None = None
    calib_samples: int = 200
    parity_dir: Path | None = None
    parity_samples: int = 256
    seed: int = 0
    threshold: float = 0.5
    tolerances: dict[str, Tolerance] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    recipe: Path | None = None
    name: str = "model"
    #: which output is the score, for a model that returns several tensors
    output_index: int | None = None
    #: search for an INT8 repair (ranges, float fallback) when plain INT8 misses its tolerance
    int8_repair: bool = True
    #: seconds the learned INT8 repair rungs (learned rounding) may spend per variant; 0: none
    int8_effort: float = 600.0
    #: crop the largest face of every calibration and parity image first (recorded in the manifest)
    face_crop: FaceCrop | None = None
    #: parity on the phone's kernels: "auto" (when the arm64 environment exists), "on" (required), "off"
    arm64: str = "auto"

    def __post_init__(self) -> None:
        if self.arm64 not in ("auto", "on", "off"):
            raise UsageError(f"--arm64 must be auto, on or off, got {self.arm64!r}")
        if not 0 <= self.int8_effort <= 86_400:
            raise UsageError(f"--int8-effort takes seconds between 0 and 86400, got {self.int8_effort:g}")
        if self.calib_samples <= 0 or self.parity_samples <= 0:
            raise UsageError("--calib-samples and --parity-samples must be positive")
        if not 0.0 < self.threshold < 1.0:
            raise UsageError(f"--threshold must be between 0 and 1, got {self.threshold}")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise UsageError(f"--name {self.name!r} must be a plain file stem")
