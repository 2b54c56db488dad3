"""ONNX Runtime CPU runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import FileFormatError
from edgekit.runners.base import Runner


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor a graph stores: initializers, and those inside node attributes and subgraphs."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _tensors(sub)


def check_external_data(model: Path) -> None:
    """Refuse an ``.onnx`` whose tensors keep their data outside the model's folder.

    An ONNX tensor may name an external file (``location``); a hostile file could name
    ``../../secret`` or ``/etc/...`` to have a runtime read a host file into its weights. The
    host's onnxruntime refuses those itself (checked with 1.32); edgekit refuses first, in one line,
    for every runtime: a location must be a relative path that stays inside the folder, links
    included."""
    import onnx

    root = Path(model).resolve().parent
    try:
        proto = onnx.load(str(model), load_external_data=False)
    except Exception as exc:  # any parse failure is this file's one-line error
        raise FileFormatError(f"{model}: not a readable ONNX model ({type(exc).__name__})") from None
    for tensor in _tensors(proto.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (root / location).resolve()
        if not location or Path(location).is_absolute() or not target.is_relative_to(root):
            raise FileFormatError(
                f"{model}: tensor {tensor.name!r} keeps its data at {location!r}, outside the model's "
                "folder: refused (external data must sit beside the model)"
            )


class OnnxRuntimeRunner(Runner):
    """Runs an ``.onnx`` file on the CPU execution provider."""

    backend = "onnxruntime"

    def __init__(self, model: Path, num_threads: int = 1) -> None:
        import onnxruntime as ort

        check_external_data(model)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        inp = self._sess.get_inputs()[0]
        self._float16 = inp.type == "tensor(float16)"
        super().__init__(inp.name, tuple(int(d) for d in inp.shape))

    def _infer_impl(self, x: np.ndarray) -> dict[str, np.ndarray]:
        feed = x.astype(np.float16) if self._float16 else x
        names = [o.name for o in self._sess.get_outputs()]
        values = self._sess.run(names, {self.input_name: feed})
        return {n: np.asarray(v, dtype=np.float32) for n, v in zip(names, values, strict=True)}
