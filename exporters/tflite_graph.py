"""A small editable view of a ``.tflite`` flatbuffer (the schema's object API).

Used by the sparsity rewrite and lint. Two traps it handles:
- ai-edge-quantizer stores weights *after* the flatbuffer body (``Buffer.offset``);
  the object API would drop them on re-serialization, so they are inlined on load.
- operator codes: ``builtinCode`` is authoritative above 127, ``deprecatedBuiltinCode``
  below; both are written for new codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import ExportError

_FILE_ID = b"TFL3"

#: TFLite tensor type -> numpy dtype (the ones edgekit's graphs use).
_DTYPES: dict[int, Any] = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated as schema

    return schema


@dataclass(frozen=True)
class Op:
    """One operator: its index, builtin name, inputs and outputs (tensor indices; -1 = none)."""

    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Any


class TFLiteGraph:
    """The first subgraph of a model, with helpers to read constants and insert ops."""

    def __init__(self, data: bytes) -> None:
        schema = _schema()
        try:
            self.model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
        except Exception as exc:
            raise ExportError(f"not a readable TFLite flatbuffer: {type(exc).__name__}: {exc}") from exc
        for buf in self.model.buffers or []:
            # Offset-stored weights (written after the body) would be lost on re-serialization.
            if getattr(buf, "offset", 0) and buf.offset > 1:
                buf.data = np.frombuffer(data, dtype=np.uint8, count=buf.size, offset=buf.offset).copy()
                buf.offset = 0
                buf.size = 0
        self.graph = self.model.subgraphs[0]
        self._names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

    # ----------------------------------------------------------------- reading
    def op_name(self, opcode_index: int) -> str:
        """Builtin operator name of an opcode index (e.g. ``CONV_2D``)."""
        code = self.model.operatorCodes[opcode_index]
        return str(self._names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM"))

    def ops(self) -> list[Op]:
        """Operators in execution order."""
        out = []
        for i, op in enumerate(self.graph.operators):
            ins = tuple(int(t) for t in (op.inputs if op.inputs is not None else ()))
            outs = tuple(int(t) for t in (op.outputs if op.outputs is not None else ()))
            out.append(Op(i, self.op_name(op.opcodeIndex), ins, outs, op.builtinOptions))
        return out

    def tensor(self, index: int) -> Any:
        """The TensorT at ``index``."""
        return self.graph.tensors[index]

    def shape(self, index: int) -> tuple[int, ...]:
        """Static shape of a tensor."""
        shape = self.graph.tensors[index].shape
        return tuple(int(d) for d in shape) if shape is not None else ()

    def tensor_name(self, index: int) -> str:
        """Tensor name as text."""
        name = self.graph.tensors[index].name
        return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name or "")

    def constant(self, index: int) -> np.ndarray | None:
        """A constant tensor's values in its stored dtype and dense shape; None if not constant or sparse."""
        t = self.graph.tensors[index]
        buf = self.model.buffers[t.buffer]
        if buf.data is None or len(buf.data) == 0 or t.sparsity is not None:
            return None
        dtype = _DTYPES.get(int(t.type))
        if dtype is None:
            return None
        raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
        return np.frombuffer(raw, dtype=dtype).reshape(self.shape(index)).copy()

    def is_constant(self, index: int) -> bool:
        """True for tensors with data in the file (dense or sparse)."""
        if index < 0:
            return False
        buf = self.model.buffers[self.graph.tensors[index].buffer]
        return buf.data is not None and len(buf.data) > 0

    def producers(self) -> dict[int, int]:
        """tensor index -> index of the op that writes it."""
        return {t: op.index for op in self.ops() for t in op.outputs}

    def consumers(self) -> dict[int, list[int]]:
        """tensor index -> indices of ops that read it."""
        out: dict[int, list[int]] = {}
        for op in self.ops():
            for t in op.inputs:
                if t >= 0:
                    out.setdefault(t, []).append(op.index)
        return out

    @property
    def graph_inputs(self) -> tuple[int, ...]:
        """Indices of the subgraph's input tensors."""
        return tuple(int(t) for t in self.graph.inputs)

    @property
    def graph_outputs(self) -> tuple[int, ...]:
        """Indices of the subgraph's output tensors."""
        return tuple(int(t) for t in self.graph.outputs)

    # ----------------------------------------------------------------- editing
    def opcode(self, name: str) -> int:
        """Index of the builtin opcode ``name``, added to the model when missing."""
        schema = _schema()
        code = int(getattr(schema.BuiltinOperator, name))
        for i, oc in enumerate(self.model.operatorCodes):
            if max(oc.builtinCode, oc.deprecatedBuiltinCode) == code:
                return i
        oc = schema.OperatorCodeT()
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.version = 1
        self.model.operatorCodes.append(oc)
        return len(self.model.operatorCodes) - 1

    def add_buffer(self, data: bytes) -> int:
        """Append a buffer holding ``data``; returns its index."""
        buf = _schema().BufferT()
        buf.data = np.frombuffer(data, dtype=np.uint8).copy() if data else None
        self.model.buffers.append(buf)
        return len(self.model.buffers) - 1

    def add_tensor(self, like: int, name: str, buffer: int = 0) -> int:
        """A new tensor with the type, shape and quantization of tensor ``like``."""
        src = self.graph.tensors[like]
        t = _schema().TensorT()
        t.shape = np.array(self.shape(like), dtype=np.int32)
        t.type = src.type
        t.buffer = buffer
        t.name = name.encode()
        t.quantization = src.quantization
        self.graph.tensors.append(t)
        return len(self.graph.tensors) - 1

    def insert_op(self, position: int, name: str, inputs: list[int], outputs: list[int]) -> None:
        """Insert a builtin op without options at ``position`` in the execution order."""
        op = _schema().OperatorT()
        op.opcodeIndex = self.opcode(name)
        op.inputs = np.array(inputs, dtype=np.int32)
        op.outputs = np.array(outputs, dtype=np.int32)
        self.graph.operators.insert(position, op)

    def remove_op(self, index: int) -> None:
        """Drop operator ``index`` (its tensors stay; unused ones cost a few bytes)."""
        del self.graph.operators[index]

    def set_input(self, op_index: int, slot: int, tensor: int) -> None:
        """Make input ``slot`` of op ``op_index`` read ``tensor``."""
        ins = np.array(self.graph.operators[op_index].inputs, dtype=np.int32)
        ins[slot] = tensor
        self.graph.operators[op_index].inputs = ins

    def to_bytes(self) -> bytes:
        """Serialize the edited model; buffers no tensor or metadata uses any more are emptied."""
        import flatbuffers

        used = {int(t.buffer) for sg in self.model.subgraphs for t in sg.tensors}
        used |= {int(m.buffer) for m in (self.model.metadata or [])}
        for i, buf in enumerate(self.model.buffers):
            if i not in used:
                buf.data = None

        builder = flatbuffers.Builder(1024)
        builder.Finish(self.model.Pack(builder), file_identifier=_FILE_ID)
        return bytes(builder.Output())
