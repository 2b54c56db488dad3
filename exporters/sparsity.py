"""XNNPACK sparse inference: graph fixes, the sparse (CSR) weight encoding, and a lint.

XNNPACK runs a region of an FP32/FP16 graph in NCHW layout with sparse 1x1-conv
kernels (SpMM) when, and only when:
- the delegate sees a constant weight stored in TFLite sparse format behind a
  ``DENSIFY`` op (zeros in dense storage never switch it on);
- the region starts at a 3x3 stride-2 conv on 3 channels with padding 1, holds only
  1x1 stride-1 convs, 3x3/5x5 depthwise convs, elementwise ops and fully-connected
  layers, and ends at a spatial MEAN (global pooling); no tensor inside it may be
  read from outside it;
- more than 2/3 of the region's 1x1-conv and fully-connected weights are zero;
- the CPU has the CHW kernels (ARM64 yes; x86 with AVX no, by XNNPACK's choice).

``lint`` re-implements that analysis (XNNPACK ``xnn_subgraph_rewrite_for_nchw``,
read from its source) on the TFLite graph so the verdict and the first blocking
reason are known before a phone is involved; ``tests/exporters`` check it against
the real kernels under ``qemu-x86_64 -cpu Nehalem`` (SSE only, so the sparse path is on).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgekit.exporters.tflite_graph import Op, TFLiteGraph

_NCHW, _H2N, _N2H, _BAD = 1, 2, 4, 8
_UNARY = {
    "ABS", "CEIL", "ELU", "FLOOR", "GELU", "HARD_SWISH", "LEAKY_RELU", "LOGISTIC", "NEG", "RELU",
    "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "ROUND", "RSQRT", "SQRT", "SQUARE", "TANH", "EXP", "LOG",
}  # fmt: skip
_STATIC_PRODUCERS = {"DEQUANTIZE", "DENSIFY"}
_FLOAT_TYPES = {0, 1}  # FLOAT32, FLOAT16
_SAME, _VALID = 0, 1


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Region:
    """One NCHW region XNNPACK would consider (a connected cluster ending at a MEAN)."""

    ops: int
    first_op: int
    last_op: int
    params: int
    zeros: int
    sparse_weights: int
    verdict: str
    reason: str

    @property
    def zero_ratio(self) -> float:
        """Share of zero weights among the region's 1x1-conv and fully-connected weights."""
        return self.zeros / self.params if self.params else 0.0


@dataclass(frozen=True)
class SparsityLint:
    """The lint's answer for one TFLite file."""

    verdict: str
    reason: str
    regions: tuple[Region, ...]
    sparse_tensors: int
    suggestions: tuple[str, ...] = ()

    @property
    def eligible(self) -> bool:
        """True when XNNPACK would switch to sparse inference on a CPU with CHW kernels (ARM64)."""
        return self.verdict == "eligible"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the manifest."""
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "sparse_tensors": self.sparse_tensors,
            "suggestions": list(self.suggestions),
            "regions": [{**asdict(r), "zero_ratio": round(r.zero_ratio, 4)} for r in self.regions],
        }


def sparsity_label(lint: dict[str, Any] | None) -> str:
    """A lint (as saved) in one word for tables: its verdict, or "dense" when there is nothing sparse to judge."""
    if not lint:
        return "-"
    ratio = max((r["zero_ratio"] for r in lint["regions"]), default=0.0)
    if lint["verdict"] != "eligible" and not lint["sparse_tensors"] and ratio < 0.5:
        return "dense"
    return str(lint["verdict"])


@dataclass(frozen=True)
class EncodedTensor:
    """One weight tensor rewritten to sparse storage."""

    op: int
    tensor: str
    shape: tuple[int, ...]
    zero_ratio: float
    dense_bytes: int
    sparse_bytes: int


@dataclass
class _Node:
    op: Op
    kind: str
    flags: int
    inputs: list[int]  # dynamic (non-static) value inputs as XNNPACK would see them
    filter: int | None = None  # static filter tensor of a 1x1 conv / FC
    reason: str = ""
    leader: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers
def _int_vector(values: np.ndarray) -> tuple[int, Any]:
    """The smallest SparseIndexVector type that holds ``values``."""
    from ai_edge_litert import schema_py_generated as schema

    top = int(values.max()) if values.size else 0
    vec: Any
    dtype: Any
    if top <= 0xFF:
        vec, kind, dtype = schema.Uint8VectorT(), schema.SparseIndexVector.Uint8Vector, np.uint8
    elif top <= 0xFFFF:
        vec, kind, dtype = schema.Uint16VectorT(), schema.SparseIndexVector.Uint16Vector, np.uint16
    else:
        vec, kind, dtype = schema.Int32VectorT(), schema.SparseIndexVector.Int32Vector, np.int32
    vec.values = values.astype(dtype)
    return int(kind), vec


def _index_bytes(top: int) -> int:
    return 1 if top <= 0xFF else 2 if top <= 0xFFFF else 4


def csr_size(weights: np.ndarray) -> int:
    """Bytes of the CSR form (values + column indices + row segments) of ``weights``."""
    rows = int(np.prod(weights.shape[:-1]))
    nnz = int(np.count_nonzero(weights))
    return nnz * (weights.dtype.itemsize + _index_bytes(weights.shape[-1] - 1)) + (rows + 1) * _index_bytes(
        nnz
    )


def _static_source(g: TFLiteGraph, tensor: int, producers: dict[int, int], ops: list[Op]) -> int:
    """Follow DEQUANTIZE/DENSIFY back to the constant that holds the data."""
    while tensor in producers and ops[producers[tensor]].name in _STATIC_PRODUCERS:
        tensor = ops[producers[tensor]].inputs[0]
    return tensor


def _static_values(
    g: TFLiteGraph, tensor: int, producers: dict[int, int], ops: list[Op]
) -> np.ndarray | None:
    """Dense values of a (quasi-)static tensor, zeros preserved; None if not static."""
    src = _static_source(g, tensor, producers, ops)
    if not g.is_constant(src):
        return None
    t = g.tensor(src)
    if t.sparsity is not None:
        return _densify(g, src)
    return g.constant(src)


def _densify(g: TFLiteGraph, index: int) -> np.ndarray | None:
    """Decode edgekit's own CSR layout (leading dims dense, last dim CSR) back to dense."""
    t = g.tensor(index)
    meta = t.sparsity.dimMetadata
    if t.sparsity.blockMap is not None and len(t.sparsity.blockMap):
        return None
    if not meta or meta[-1].format != 1 or any(m.format != 0 for m in meta[:-1]):
        return None
    shape = g.shape(index)
    dtype = {0: np.float32, 1: np.float16, 9: np.int8}.get(int(t.type))
    if dtype is None:
        return None
    raw = np.asarray(g.model.buffers[t.buffer].data, dtype=np.uint8).tobytes()
    values = np.frombuffer(raw, dtype=dtype)
    seg = np.asarray(meta[-1].arraySegments.values, dtype=np.int64)
    idx = np.asarray(meta[-1].arrayIndices.values, dtype=np.int64)
    dense = np.zeros((int(np.prod(shape[:-1])), shape[-1]), dtype=dtype)
    rows = np.repeat(np.arange(len(seg) - 1), np.diff(seg))
    dense[rows, idx] = values
    return dense.reshape(shape)


def _is_1x1(g: TFLiteGraph, op: Op) -> bool:
    return op.name == "CONV_2D" and g.shape(op.inputs[1])[1:3] == (1, 1)


# --------------------------------------------------------------------------- graph fixes
def fix_graph(g: TFLiteGraph) -> list[str]:
    """Rewrites that keep an XNNPACK NCHW region intact without changing results.

    - ``TRANSPOSE(0,3,1,2)`` + ``MEAN(2,3)`` (how litert-torch exports ``x.mean((2, 3))``)
      becomes one ``MEAN(1,2)`` on the NHWC tensor.
    - 0-d constants in ``MUL``/``ADD`` on 4-D tensors (e.g. hardsigmoid's ``/6``) get the
      shape ``[1,1,1,1]``: XNNPACK requires 4-D operands in the region.
    Returns one line per change.
    """
    changes: list[str] = []
    ops = g.ops()
    consumers = g.consumers()
    producers = g.producers()
    drop: list[int] = []
    for op in ops:
        if op.name != "MEAN" or op.inputs[0] not in producers:
            continue
        tr = ops[producers[op.inputs[0]]]
        perm = g.constant(tr.inputs[1]) if tr.name == "TRANSPOSE" else None
        axes = g.constant(op.inputs[1])
        if perm is None or axes is None or list(perm) != [0, 3, 1, 2] or sorted(axes.tolist()) != [2, 3]:
            continue
        if len(consumers.get(tr.outputs[0], [])) != 1:
            continue
        buf = g.add_buffer(np.array([1, 2], dtype=np.int32).tobytes())
        axis_t = g.add_tensor(op.inputs[1], f"edgekit/mean_axes_{op.index}", buffer=buf)
        g.set_input(op.index, 0, tr.inputs[0])
        g.set_input(op.index, 1, axis_t)
        drop.append(tr.index)
        changes.append(f"op {op.index}: TRANSPOSE+MEAN(2,3) -> MEAN(1,2) (keeps the sparse region's pooling)")
    for op in ops:
        if op.name not in ("MUL", "ADD") or len(op.inputs) != 2:
            continue
        a, b = op.inputs
        for slot, (const, other) in enumerate(((a, b), (b, a))):
            if g.is_constant(const) and g.shape(const) == () and len(g.shape(other)) == 4:
                # A 4-d view of the same buffer, for this op only: the scalar may be shared.
                view = g.add_tensor(
                    const, f"{g.tensor_name(const)}/4d_{op.index}", buffer=g.tensor(const).buffer
                )
                g.tensor(view).shape = np.array([1, 1, 1, 1], dtype=np.int32)
                g.set_input(op.index, slot, view)
                changes.append(f"op {op.index}: scalar {op.name} operand viewed as [1,1,1,1]")
    for index in sorted(drop, reverse=True):
        g.remove_op(index)
    return changes


# --------------------------------------------------------------------------- encoding
def encode_sparse(g: TFLiteGraph, min_zero_ratio: float = 0.5) -> list[EncodedTensor]:
    """Store 1x1-conv and fully-connected weights in CSR form behind a DENSIFY op.

    Only where the CSR form is smaller than the dense one and at least
    ``min_zero_ratio`` of the weights are zero. Works on float32, float16 and int8
    weights (the latter two behind their DEQUANTIZE). The sparse tensor only ever
    feeds DENSIFY: a sparse tensor read by any other op crashes the runtime.
    """
    from ai_edge_litert import schema_py_generated as schema

    done: list[EncodedTensor] = []
    inserts: list[tuple[int, int, int, int]] = []  # (before op, consumer op, slot, sparse tensor)
    ops = g.ops()
    producers = g.producers()
    consumers = g.consumers()
    for op in ops:
        if not (_is_1x1(g, op) or op.name == "FULLY_CONNECTED") or len(op.inputs) < 2:
            continue
        consumer, slot, tensor = op.index, 1, op.inputs[1]
        if tensor in producers and ops[producers[tensor]].name == "DEQUANTIZE":
            consumer, slot, tensor = producers[tensor], 0, ops[producers[tensor]].inputs[0]
        if not g.is_constant(tensor) or g.tensor(tensor).sparsity is not None:
            continue
        if len(consumers.get(tensor, [])) != 1:
            continue  # a shared constant would need one DENSIFY per reader
        w = g.constant(tensor)
        if w is None or w.dtype not in (np.float32, np.float16, np.int8) or w.ndim < 2:
            continue
        zero_ratio = 1.0 - np.count_nonzero(w) / w.size
        sparse_bytes = csr_size(w)
        if zero_ratio < min_zero_ratio or sparse_bytes >= w.nbytes:
            continue
        rows = w.reshape(-1, w.shape[-1])
        nz_rows, nz_cols = np.nonzero(rows)
        seg = np.concatenate([[0], np.cumsum(np.bincount(nz_rows, minlength=rows.shape[0]))])
        dims = []
        for d in w.shape[:-1]:
            m = schema.DimensionMetadataT()
            m.format, m.denseSize = schema.DimensionType.DENSE, int(d)
            dims.append(m)
        last = schema.DimensionMetadataT()
        last.format = schema.DimensionType.SPARSE_CSR
        last.arraySegmentsType, last.arraySegments = _int_vector(seg)
        last.arrayIndicesType, last.arrayIndices = _int_vector(nz_cols)
        dims.append(last)
        sp = schema.SparsityParametersT()
        sp.traversalOrder = np.arange(w.ndim, dtype=np.int32)
        sp.dimMetadata = dims
        t = g.tensor(tensor)
        t.sparsity = sp
        t.buffer = g.add_buffer(rows[nz_rows, nz_cols].tobytes())
        inserts.append((op.index if consumer == op.index else consumer, consumer, slot, tensor))
        done.append(
            EncodedTensor(
                op.index, g.tensor_name(tensor), tuple(w.shape), float(zero_ratio), w.nbytes, sparse_bytes
            )
        )
    for before, consumer, slot, tensor in sorted(inserts, reverse=True):
        dense = g.add_tensor(tensor, f"{g.tensor_name(tensor)}/densified")
        g.set_input(consumer, slot, dense)
        g.insert_op(before, "DENSIFY", [tensor], [dense])
    return done


# --------------------------------------------------------------------------- lint
def _fused_pad(g: TFLiteGraph, op: Op, producers: dict[int, int], consumers: dict[int, list[int]], ops: list[Op]) -> tuple[int, tuple[int, int, int, int]]:  # fmt: skip
    """(effective input, (top, right, bottom, left)) after XNNPACK folds a preceding zero PAD."""
    x = op.inputs[0]
    opts = op.options
    if getattr(opts, "padding", _SAME) != _VALID or x not in producers:
        return x, (0, 0, 0, 0)
    pad = ops[producers[x]]
    if pad.name != "PAD" or len(consumers.get(x, [])) != 1:
        return x, (0, 0, 0, 0)
    amounts = g.constant(pad.inputs[1])
    if amounts is None or amounts.shape != (4, 2) or amounts[0].any() or amounts[3].any():
        return x, (0, 0, 0, 0)
    return pad.inputs[0], (int(amounts[1, 0]), int(amounts[2, 1]), int(amounts[1, 1]), int(amounts[2, 0]))


def _same_pad(kernel: int, stride: int) -> tuple[int, int, int, int] | None:
    # XNNPACK turns TF SAME into explicit padding only for stride 1.
    if stride != 1:
        return None
    p = (kernel - 1) // 2
    q = kernel - 1 - p
    return (p, q, q, p)


def _classify(g: TFLiteGraph, op: Op, ctx: dict[str, Any]) -> _Node:
    """XNNPACK's per-node NCHW compatibility, on one TFLite op."""
    producers, consumers, ops, static = ctx["producers"], ctx["consumers"], ctx["ops"], ctx["static"]
    name = op.name
    data_inputs = list(op.inputs)
    if name in ("MEAN", "SUM", "PAD", "TRANSPOSE", "RESHAPE"):
        data_inputs = data_inputs[:1]
    node = _Node(op, name, 0, [t for t in data_inputs if t >= 0 and t not in static])
    values = [t for t in data_inputs if t >= 0] + list(op.outputs)
    if any(int(g.tensor(t).type) not in _FLOAT_TYPES for t in values):
        node.reason = f"op {op.index} ({name}) computes in integer types (INT8 compute never runs sparse)"
        return node
    o = op.options
    if name == "CONV_2D":
        kh, kw = g.shape(op.inputs[1])[1:3]
        cin = g.shape(op.inputs[1])[3]
        if (o.dilationHFactor, o.dilationWFactor) != (1, 1):
            node.reason = "dilated CONV_2D"
            return node
        x, pad = _fused_pad(g, op, producers, consumers, ops)
        node.inputs = [t for t in [x] if t not in static]
        if (kh, kw) == (1, 1):
            node.filter = op.inputs[1]
            if (o.strideH, o.strideW) != (1, 1):
                node.reason = "1x1 CONV_2D with stride != 1"
                return node
            node.flags = _NCHW
            return node
        if o.padding == _SAME:
            pad = _same_pad(kh, o.strideH) or (-1, -1, -1, -1)
        if (kh, kw) == (3, 3) and pad == (1, 1, 1, 1) and (o.strideH, o.strideW) == (2, 2) and cin == 3:
            node.flags = _H2N
            return node
        node.reason = f"CONV_2D {kh}x{kw} stride {o.strideH} on {cin} channels (only 1x1, or the 3x3/2 stem on 3 channels)"
        return node
    if name == "DEPTHWISE_CONV_2D":
        kh, kw = g.shape(op.inputs[1])[1:3]
        x, pad = _fused_pad(g, op, producers, consumers, ops)
        node.inputs = [t for t in [x] if t not in static]
        if o.padding == _SAME:
            pad = _same_pad(kh, o.strideH) or (-1, -1, -1, -1)
        ok = (
            (o.dilationHFactor, o.dilationWFactor) == (1, 1)
            and o.depthMultiplier in (0, 1)
            and o.strideH == o.strideW
            and o.strideH in (1, 2)
            and kh == kw
            and kh in (3, 5)
            and pad == (kh // 2,) * 4
        )
        if ok:
            node.flags = _NCHW
        else:
            node.reason = f"DEPTHWISE_CONV_2D {kh}x{kw} stride {o.strideH} padding {pad} (needs 3x3/5x5, stride 1-2, symmetric k//2 padding)"
        return node
    if name == "FULLY_CONNECTED":
        node.filter = op.inputs[1]
        node.flags = _NCHW
        return node
    if name in ("MEAN", "SUM"):
        if len(g.shape(op.inputs[0])) == 4:
            node.flags = _NCHW | _N2H
        else:
            node.reason = f"{name} on a {len(g.shape(op.inputs[0]))}-d tensor"
        return node
    if name in ("ADD", "MUL"):
        a, b = op.inputs[:2]
        if len(g.shape(a)) != 4 or len(g.shape(b)) != 4:
            node.reason = f"{name} with operands of shapes {g.shape(a)} and {g.shape(b)} (needs 4-d)"
            return node
        # As in XNNPACK: a static operand must be a scalar or a vector; for the second
        # operand XNNPACK checks the *first* operand's shape (upstream quirk, kept).
        for t in (a, b):
            if t in static and sum(d != 1 for d in g.shape(a)) > 1:
                node.reason = f"{name} with a constant operand that is not a scalar or vector"
                return node
        node.flags = _NCHW
        return node
    if name in _UNARY:
        if len(g.shape(op.inputs[0])) == 4:
            node.flags = _NCHW
        else:
            node.reason = f"{name} on a {len(g.shape(op.inputs[0]))}-d tensor"
        return node
    if name == "RESIZE_BILINEAR":
        h, w = g.shape(op.inputs[0])[1:3]
        node.flags = _NCHW if h > 1 and w > 1 else 0
        node.reason = "" if node.flags else "RESIZE_BILINEAR of a 1-pixel input"
        return node
    if name == "DEPTH_TO_SPACE":
        node.flags = _N2H
        return node
    node.reason = f"{name} is not supported in a sparse region"
    return node


def lint(g: TFLiteGraph) -> SparsityLint:
    """Would XNNPACK run this graph sparse on ARM64? Verdict, regions and the first blocking reason."""
    ops = g.ops()
    producers, consumers = g.producers(), g.consumers()
    static: set[int] = set()
    sparse_tensors: set[int] = set()
    stored_sparse = 0
    skipped: set[int] = set()
    for op in ops:
        if op.name in _STATIC_PRODUCERS and (g.is_constant(op.inputs[0]) or op.inputs[0] in static):
            static.add(op.outputs[0])
            skipped.add(op.index)
            if (
                op.name == "DENSIFY"
                and g.is_constant(op.inputs[0])
                and g.tensor(op.inputs[0]).sparsity is not None
            ):
                sparse_tensors.add(op.outputs[0])
                stored_sparse += 1
            if op.name == "DEQUANTIZE" and op.inputs[0] in sparse_tensors:
                sparse_tensors.add(op.outputs[0])
    for t in range(len(g.graph.tensors)):
        if g.is_constant(t):
            static.add(t)
    ctx = {"producers": producers, "consumers": consumers, "ops": ops, "static": static}
    # XNNPACK folds a zero PAD into the (depthwise) conv that reads it; model that by
    # leaving such PADs out of the node list.
    nodes: list[_Node] = []
    for op in ops:
        if op.index in skipped:
            continue
        if op.name == "PAD":
            readers = [ops[c] for c in consumers.get(op.outputs[0], [])]
            if len(readers) == 1 and readers[0].name in ("CONV_2D", "DEPTHWISE_CONV_2D") and getattr(readers[0].options, "padding", _SAME) == _VALID:  # fmt: skip
                continue
        nodes.append(_classify(g, op, ctx))
    by_output = {t: i for i, n in enumerate(nodes) for t in n.op.outputs}
    external = set(g.graph_inputs) | set(g.graph_outputs)
    num_consumers: dict[int, int] = {}
    for n in nodes:
        for t in n.inputs:
            num_consumers[t] = num_consumers.get(t, 0) + 1
    for i, n in enumerate(nodes):
        n.leader = i
    reasons: dict[int, str] = {}

    def join(i: int, n: _Node) -> bool:
        changed = False
        for t in n.inputs:
            if t in external or t not in by_output:
                n.flags |= _BAD
                reasons.setdefault(
                    i, f"op {n.op.index} ({n.kind}) reads the graph input {g.tensor_name(t)!r} directly"
                )
                continue
            p = nodes[by_output[t]]
            if p.flags & (_H2N | _NCHW) and not p.flags & _BAD:
                p.flags &= ~_N2H
                if p.leader != n.leader:
                    p.leader = n.leader = max(p.leader, n.leader)
                    changed = True
            else:
                n.flags |= _BAD
                root = reasons.get(by_output[t])  # report the root cause, not the chain
                why = (
                    root
                    or f"op {n.op.index} ({n.kind}) reads op {p.op.index} ({p.kind}): {p.reason or 'outside the region'}"
                )
                reasons.setdefault(i, why)
        return changed

    update = False
    for i, n in enumerate(nodes):
        if n.flags & _N2H:
            update |= join(i, n)
    if not any(n.flags & _N2H for n in nodes) and not any(n.kind in ("MEAN", "SUM") for n in nodes):
        return _verdict([], stored_sparse, "no spatial MEAN (global pooling) ends a region")
    while update:
        update = False
        for i, n in enumerate(nodes):
            if n.flags & _BAD or not n.flags & (_NCHW | _N2H):
                continue
            update |= join(i, n)
    for i, n in enumerate(nodes):
        if n.flags & _BAD:
            nodes[n.leader].flags |= _BAD
            reasons.setdefault(n.leader, reasons.get(i, ""))
    in_region = [
        i for i, n in enumerate(nodes) if not nodes[n.leader].flags & _BAD and n.flags & (_NCHW | _N2H)
    ]
    nchw_consumers: dict[int, int] = {}
    for i in in_region:
        for t in nodes[i].inputs:
            nchw_consumers[t] = nchw_consumers.get(t, 0) + 1
    for i in in_region:
        for t in nodes[i].inputs:
            if nchw_consumers[t] != num_consumers[t]:
                leader = nodes[i].leader
                nodes[leader].flags |= _BAD
                outside = [nodes[j].op for j, m in enumerate(nodes) if t in m.inputs and j not in in_region]
                who = f"op {outside[0].index} ({outside[0].name})" if outside else "an op outside the region"
                reasons.setdefault(
                    leader, f"tensor {g.tensor_name(t)!r} inside the region is also read by {who}"
                )
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        if n.flags & (_NCHW | _N2H | _H2N) or i in reasons:
            groups.setdefault(n.leader, []).append(i)
    regions = []
    for leader, members in groups.items():
        if not any(nodes[i].flags & _H2N or nodes[i].kind in ("MEAN", "SUM") for i in members):
            continue  # not a region: no stem conv and no pooling
        params = zeros = sparse = 0
        for i in members:
            n = nodes[i]
            if n.filter is None:
                continue
            w = _static_values(g, n.filter, producers, ops)
            if w is None:
                continue
            shape = w.shape
            params += int(shape[0] * shape[-1])
            zeros += int(np.count_nonzero(w.reshape(-1)[: shape[0] * shape[-1]] == 0))
            sparse += int(n.filter in sparse_tensors)
        first, last = nodes[members[0]].op.index, nodes[members[-1]].op.index
        has_stem = any(nodes[i].flags & _H2N for i in members)
        if nodes[leader].flags & _BAD:
            verdict, reason = "blocked", reasons.get(leader, "incompatible op in the region")
        elif not has_stem:
            verdict, reason = (
                "blocked",
                "the region does not start at a 3x3 stride-2 conv on 3 channels (padding 1)",
            )
        elif params == 0:
            verdict, reason = "blocked", "no 1x1 conv in the region"
        elif zeros * 3 <= params * 2:
            verdict = "too-dense"
            reason = (
                f"{zeros}/{params} 1x1-conv/FC weights are zero ({zeros / params:.1%}); XNNPACK needs > 66.7%"
            )
        elif sparse == 0:
            verdict, reason = (
                "dense-storage",
                "weights are zero but stored dense; XNNPACK only goes sparse behind DENSIFY",
            )
        else:
            verdict, reason = "eligible", f"{zeros / params:.1%} zeros, {sparse} sparse-stored weights"
        regions.append(Region(len(members), first, last, params, zeros, sparse, verdict, reason))
    pooling = [n.reason for n in nodes if n.kind in ("MEAN", "SUM") and n.reason]
    return _verdict(
        regions, stored_sparse, (pooling or [n.reason for n in nodes if n.reason] or ["no region"])[0]
    )


def _verdict(regions: list[Region], stored_sparse: int, fallback: str) -> SparsityLint:
    order = ("eligible", "dense-storage", "too-dense", "blocked")
    best = min(regions, key=lambda r: (order.index(r.verdict), -r.ops), default=None)
    suggestions = []
    if best is None:
        return SparsityLint("blocked", fallback or "no region", (), stored_sparse)
    if best.verdict == "dense-storage":
        suggestions.append("export with --sparse to store the pruned weights in CSR form")
    if best.verdict == "too-dense":
        suggestions.append(
            "prune further (edgekit prune --sparsity 0.8), or keep the classifier FC out of the region"
        )
    if best.verdict == "blocked" and "TRANSPOSE" in best.reason:
        suggestions.append(
            "pool with x.mean((2, 3), keepdim=True) or let edgekit's --sparse graph fix fold the TRANSPOSE"
        )
    return SparsityLint(best.verdict, best.reason, tuple(regions), stored_sparse, tuple(suggestions))


def isolate_dense_fc(g: TFLiteGraph) -> list[str]:
    """Keep a mostly dense classifier FC out of a sparse region it would disqualify.

    XNNPACK pulls a FULLY_CONNECTED that reads the pooled features into the region
    and counts its weights toward the 2/3-zeros rule. Where the region passes without
    it, a no-op RESHAPE between the MEAN and the FC ends the region at the MEAN.
    """
    changes: list[str] = []
    result = lint(g)
    ops = g.ops()
    producers = g.producers()
    for region in result.regions:
        if region.verdict != "too-dense":
            continue
        for op in ops[region.first_op : region.last_op + 1]:
            src = producers.get(op.inputs[0])
            if op.name != "FULLY_CONNECTED" or src is None or ops[src].name != "MEAN":
                continue
            w = _static_values(g, op.inputs[1], producers, ops)
            if w is None:
                continue
            params = int(w.shape[0] * w.shape[-1])
            zeros = int(np.count_nonzero(w == 0))
            if (region.zeros - zeros) * 3 <= (region.params - params) * 2:
                continue
            x = op.inputs[0]
            shape_buf = g.add_buffer(np.array(g.shape(x), dtype=np.int32).tobytes())
            shape_t = g.add_tensor(x, f"edgekit/fc_isolation_shape_{op.index}", buffer=shape_buf)
            g.tensor(shape_t).type = 2  # INT32
            g.tensor(shape_t).shape = np.array([len(g.shape(x))], dtype=np.int32)
            g.tensor(shape_t).quantization = None
            y = g.add_tensor(x, f"edgekit/fc_isolation_{op.index}")
            g.set_input(op.index, 0, y)
            g.insert_op(op.index, "RESHAPE", [x, shape_t], [y])
            changes.append(
                f"op {op.index}: RESHAPE before the {zeros / params:.0%}-sparse FULLY_CONNECTED keeps it out of the region"
            )
            return changes + isolate_dense_fc(g)
    return changes
