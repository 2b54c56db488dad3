"""LiteRT (ai-edge-litert) runner with the default XNNPACK delegate, as on a phone's CPU."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._capture import captured_output
from edgekit.runners.base import Delegation, Runner


def _delegation(interp: Any) -> Delegation:
    """Work out which original nodes a DELEGATE node replaced.

    The interpreter lists the original nodes followed by the DELEGATE nodes but not
    its execution plan, so we grow each partition from the delegate's outputs: a
    node is delegated when it produces a delegate output, or exchanges a tensor
    with a delegated node that no delegate boundary exposes.
    """
    ops = interp._get_ops_details()
    delegates = [o for o in ops if o["op_name"] == "DELEGATE"]
    originals = [o for o in ops if o["op_name"] != "DELEGATE"]
    boundary = {int(t) for d in delegates for t in list(d["outputs"]) + list(d["inputs"])}
    producer = {int(t): o["index"] for o in originals for t in o["outputs"]}
    consumers: dict[int, list[int]] = {}
    for o in originals:
        for t in o["inputs"]:
            consumers.setdefault(int(t), []).append(o["index"])
    by_index = {o["index"]: o for o in originals}
    delegate_outputs = {int(t) for d in delegates for t in d["outputs"]}
    inside = {o["index"] for o in originals if any(int(t) in delegate_outputs for t in o["outputs"])}
    frontier = list(inside)
    while frontier:
        node = by_index[frontier.pop()]
        neighbours: list[int] = []
        for t in node["inputs"]:
            if int(t) not in boundary and int(t) in producer:
                neighbours.append(producer[int(t)])
        for t in node["outputs"]:
            if int(t) not in boundary:
                neighbours.extend(consumers.get(int(t), []))
        for n in neighbours:
            if n not in inside:
                inside.add(n)
                frontier.append(n)
    left = Counter(o["op_name"] for o in originals if o["index"] not in inside)
    return Delegation(len(delegates), len(inside), len(originals), dict(sorted(left.items())))


class LiteRTRunner(Runner):
    """Runs a ``.tflite`` file; int8/uint8 inputs and outputs are (de)quantized with the file's params."""

    backend = "litert"

    def __init__(self, model: Path | bytes, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        with captured_output():  # "INFO: Created TensorFlow Lite XNNPACK delegate" on stderr
            if isinstance(model, bytes):
                self._interp = Interpreter(model_content=model, num_threads=num_threads)
            else:
                self._interp = Interpreter(model_path=str(model), num_threads=num_threads)
            self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]
        self._outs = self._interp.get_output_details()
        super().__init__(self._in["name"], tuple(int(d) for d in self._in["shape"]))

    @property
    def input_dtype(self) -> str:
        """The dtype of the model's input tensor (float32, int8, ...)."""
        return str(np.dtype(self._in["dtype"]))

    @property
    def input_quantization(self) -> dict[str, float] | None:
        """Scale and zero point of an integer input tensor (None for float input)."""
        if np.dtype(self._in["dtype"]) == np.float32:
            return None
        scale, zero = self._in["quantization"]
        return {"scale": float(scale), "zero_point": int(zero)}

    @property
    def output_quantization(self) -> list[tuple[float, int] | None]:
        """(scale, zero point) per output for integer outputs, None for float ones."""
        out: list[tuple[float, int] | None] = []
        for o in self._outs:
            scale, zero = o["quantization"]
            out.append(None if np.dtype(o["dtype"]) == np.float32 else (float(scale), int(zero)))
        return out

    @property
    def input_tensor(self) -> tuple[tuple[int, ...], str]:
        """(shape, dtype name) of the input tensor as stored in the file."""
        return tuple(int(d) for d in self._in["shape"]), str(np.dtype(self._in["dtype"]))

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """``x`` in the input tensor's own dtype (float32 unchanged, int8 quantized)."""
        dtype = np.dtype(self._in["dtype"])
        if dtype == np.float32:
            return np.ascontiguousarray(x, dtype=np.float32)
        scale, zero = self._in["quantization"]
        info = np.iinfo(dtype)
        q: np.ndarray = np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
        return q

    def delegation(self) -> Delegation:
        """Partition report of the XNNPACK delegate for this model."""
        return _delegation(self._interp)

    def _infer_impl(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self._interp.set_tensor(self._in["index"], self.quantize_input(x))
        self._interp.invoke()
        outputs: dict[str, np.ndarray] = {}
        for out in self._outs:
            y = self._interp.get_tensor(out["index"])
            if y.dtype != np.float32:
                scale, zero = out["quantization"]
                y = (y.astype(np.float32) - zero) * scale if scale else y.astype(np.float32)
            outputs[out["name"]] = y
        return outputs
