"""INT8 that holds: find where quantization breaks, and repair it, cheapest step first.

When a static INT8 variant misses its tolerance on a check set (the calibration images, so
the parity set stays unseen), the exporter tries, in order and stopping at the first that
holds: percentile activation ranges (99.99, then 99.9) instead of min/max, then keeping
the 1, 2, then 4 ops that lose the most SQNR in float. Each attempt is recorded (flips,
SQNR, seconds) with the ops that localisation names, so the manifest says what was done
and, when nothing holds, which ops must stay float and why.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit._capture import captured_output
from edgekit.parity import sqnr_db

#: the ops whose INT8 error localisation ranks (the ones that carry weights)
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def readable_name(tensor_name: str) -> str:
    """``...Sequential_blocks/...InvertedResidual_0/...Conv2d_3;2`` -> ``blocks.0.3`` style module path."""
    segments = [s for s in tensor_name.split(";") if "/" in s]
    seg = next(
        (s for s in segments if re.search(r"(Conv2d|Linear)_", s)), segments[0] if segments else tensor_name
    )
    parts = []
    for part in seg.split("/")[1:]:
        _, sep, suffix = part.rpartition("_")
        if sep:
            parts.append(suffix)
    return ".".join(parts) or tensor_name


class TensorProbe:
    """Runs a TFLite model without delegates, keeping every tensor, to read one op's output."""

    def __init__(self, model: bytes) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        with captured_output():
            self.interp = Interpreter(
                model_content=model,
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                experimental_preserve_all_tensors=True,
            )
            self.interp.allocate_tensors()
        self.by_name = {d["name"]: d for d in self.interp.get_tensor_details()}
        self.inp = self.interp.get_input_details()[0]["index"]
        self.out = self.interp.get_output_details()[0]

    def run(self, x: np.ndarray, tensor: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        outs, layers = [], []
        for i in range(len(x)):
            self.interp.set_tensor(self.inp, x[i : i + 1])
            self.interp.invoke()
            outs.append(self._read(self.out))
            detail = self.by_name.get(tensor) if tensor else None
            if detail is not None:
                layers.append(self._read(detail))
        return np.concatenate(outs), (np.concatenate(layers) if layers else None)

    def ops(self) -> list[tuple[str, str]]:
        """(op name, first output tensor name) of every node, in execution order."""
        names = {d["index"]: d["name"] for d in self.interp.get_tensor_details()}
        return [
            (op["op_name"], names.get(int(op["outputs"][0]), ""))
            for op in self.interp._get_ops_details()
            if len(op["outputs"])
        ]

    def tensors(self, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        """Every named tensor (dequantized) for each sample of ``x``, one invoke per sample."""
        found: dict[str, list[np.ndarray]] = {n: [] for n in names if n in self.by_name}
        for i in range(len(x)):
            self.interp.set_tensor(self.inp, x[i : i + 1])
            self.interp.invoke()
            for name in found:
                found[name].append(self._read(self.by_name[name]))
        return {n: np.concatenate(v) for n, v in found.items() if v}

    def _read(self, detail: dict[str, Any]) -> np.ndarray:
        y: np.ndarray = np.asarray(self.interp.get_tensor(detail["index"]), dtype=np.float32)
        scale, zero = detail["quantization"]
        if detail["dtype"] != np.float32 and scale:
            y = (y - zero) * scale
        return y.reshape(1, -1) if y.shape[0] == 1 else y


@dataclass(frozen=True)
class Attempt:
    """One repair step and how it measured on the check set."""

    step: str
    flips: int
    samples: int
    sqnr_db: float
    passed: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (an infinite SQNR is capped at 200 dB)."""
        d = asdict(self)
        d["sqnr_db"] = round(min(self.sqnr_db, 200.0), 2) if math.isfinite(self.sqnr_db) else 200.0
        d["seconds"] = round(self.seconds, 2)
        return d


def search(
    steps: Iterable[tuple[str, Callable[[], bytes]]], measure: Callable[[bytes], tuple[int, int, float, bool]]
) -> tuple[bytes, list[Attempt]]:
    """Build and measure each step in order; stop at the first that passes.

    ``measure(model) -> (flips, samples, sqnr_db, passed)``. When none passes, the best
    attempt (fewest flips, then highest SQNR) is returned with every attempt listed.
    """
    attempts: list[Attempt] = []
    built: list[bytes] = []
    for name, build in steps:
        start = time.perf_counter()
        model = build()
        flips, samples, sqnr, passed = measure(model)
        attempts.append(Attempt(name, flips, samples, sqnr, passed, time.perf_counter() - start))
        built.append(model)
        if passed:
            return model, attempts
    best = min(range(len(attempts)), key=lambda i: (attempts[i].flips, -attempts[i].sqnr_db))
    return built[best], attempts


def localise(
    float_model: bytes, quant_model: bytes, inputs: np.ndarray, top: int = 5
) -> list[dict[str, Any]]:
    """The weight ops (conv, depthwise, FC) that lose the most SQNR, in graph order of loss.

    Both models run without delegates keeping every tensor; each op's output is compared
    with the float model's tensor of the same name. An op's loss is the drop from the SQNR
    of the previous weight op's output to its own, so error that accumulates downstream is
    charged to the op that caused it.
    """
    ref = TensorProbe(float_model)
    quant = TensorProbe(quant_model)
    ops = [op for op in quant.ops() if op[0] in WEIGHT_OPS and op[1] in ref.by_name]
    names = [tensor for _, tensor in ops]
    quant_out, ref_out = quant.tensors(inputs, names), ref.tensors(inputs, names)
    rows: list[dict[str, Any]] = []
    previous = 200.0
    for kind, tensor in ops:
        q, f = quant_out.get(tensor), ref_out.get(tensor)
        if q is None or f is None or q.shape != f.shape:
            continue
        sqnr = min(sqnr_db(f, q), 200.0)
        rows.append({"op": kind, "tensor": tensor, "layer": readable_name(tensor), "sqnr_db": round(sqnr, 2),
                     "loss_db": round(max(previous - sqnr, 0.0), 2)})  # fmt: skip
        previous = sqnr
    return sorted(rows, key=lambda r: -r["loss_db"])[:top]
