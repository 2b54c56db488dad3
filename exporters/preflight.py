"""Read the model's graph before any conversion: what no converter will take, and binary layers.

A conversion can run for many minutes before a converter rejects an op (an SPSL detector's FFT
failed after 22 minutes as "aten._to_copy.default in unknown layer"). The graph torch.export
gives in about a second already says it: complex tensors (FFT, ``angle``) that no converter
here lowers (LiteRT, ONNX, ExecuTorch: each measured on such a model), and ops with no LiteRT
lowering at all (looked up in litert-torch's own registry after the core ATen decompositions
it starts from). Each finding names the op, the source line and module it came from, and
what to do.

The same pass finds binary layers (BNext/ReActNet style): convolutions whose effective weights
(after constant folding of ``sign(w) * scale``) hold two values of one magnitude per output
channel, and whose input is a ``sign``. No runtime here has 1-bit kernels, so the export says
how such a layer is stored and run.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: ops whose presence means complex arithmetic (the FFT family and its helpers)
_COMPLEX_OPS = re.compile(r"\b(fft_\w+|_fft_\w+|angle|view_as_complex|view_as_real|complex|polar)\b")
#: formats measured to reject complex tensors: litert-torch (no complex dtype lowering),
#: torch.onnx's dynamo exporter (ConversionError on fft_fft2) and ExecuTorch 1.5 (fails lowering
#: ``mul(angle, 1j)``), on tests/seeds.py's SPSL model
COMPLEX_BLOCKS = ("tflite", "onnx", "executorch")
_NO_LOWERING_NEEDED = {"<built-in function getitem>"}
_MAX_FOLD_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class Blocker:
    """An op a converter will reject, found before conversion."""

    op: str  # e.g. "aten.fft_fft2.default"
    formats: tuple[str, ...]  # the formats that cannot take it
    source: str  # "file.py:160 in forward: <code>" ("" when torch recorded none)
    module: str  # "backbone.phase (SPSLTiny)"; "" for the model's own forward
    reason: str
    fix: str

    def line(self) -> str:
        """One line: the op, where it comes from, who refuses it, what to do."""
        where = f" at {self.source}" if self.source else ""
        inside = f" in module {self.module}" if self.module else ""
        return f"{self.reason}: {self.op}{where}{inside}; {self.fix}"


@dataclass(frozen=True)
class BinaryLayer:
    """A 1-bit convolution: weights +-alpha per output channel, sign activations in."""

    module: str
    op: str  # the graph node, e.g. "conv2d_1"
    out_channels: int
    weights_per_channel: int
    sign_input: bool


@dataclass(frozen=True)
class GraphFacts:
    """What the graph says before any conversion."""

    blockers: list[Blocker] = field(default_factory=list)
    binary: list[BinaryLayer] = field(default_factory=list)
    seconds: float = 0.0

    def binary_dict(self) -> dict[str, Any] | None:
        """The binary layers as manifest data (None when there are none)."""
        if not self.binary:
            return None
        return {"layers": [asdict(b) for b in self.binary], "statement": binary_statement(self.binary)}


def binary_statement(layers: list[BinaryLayer]) -> str:
    """How binary layers are stored and run, in one sentence a user can act on."""
    signs = sum(1 for b in layers if b.sign_input)
    return (
        f"{len(layers)} binary convolution(s) ({signs} with sign activations in): 1-bit weights are stored as "
        "INT8 in the INT8 variants (+-127 on a per-channel scale: exact) and as FP32/FP16 in the float ones, "
        "and run on 8-bit or float kernels (tflite_int8 keeps the sign ops and their inputs float: INT8 would "
        "round inputs near zero to 0, whose sign is 0); LiteRT/XNNPACK, ONNX Runtime and ExecuTorch's CPU backends have "
        "no 1-bit kernels, so neither the 32x smaller weights nor the XNOR-popcount speed of a binary engine "
        "is had on the phone"
    )


def inspect(module: Any, sample: Any, formats: set[str]) -> GraphFacts:
    """Export ``module`` at ``sample`` and read its graph; never raises for the model's sake (a
    model torch.export cannot take is the converters' to report, with their own words)."""
    import time

    import torch

    start = time.perf_counter()
    try:
        ep = torch.export.export(module, (sample,), strict=False)
    except Exception:
        return GraphFacts(seconds=time.perf_counter() - start)
    blockers = _complex(ep)
    if "tflite" in formats and not blockers:
        blockers = _no_litert_lowering(ep)
    binary = _binary_layers(ep)
    return GraphFacts([b for b in blockers if set(b.formats) & formats], binary, time.perf_counter() - start)


def _source(node: Any) -> str:
    """The innermost recorded frame: ``file.py:LINE in fn: code``."""
    trace = str(node.meta.get("stack_trace") or "").strip().splitlines()
    for i in range(len(trace) - 1, -1, -1):
        m = re.match(r'\s*File "([^"]+)", line (\d+), in (\S+)', trace[i])
        if m:
            code = trace[i + 1].strip() if i + 1 < len(trace) else ""
            name = _short(m.group(1))
            return f"{name}:{m.group(2)} in {m.group(3)}" + (f": {code[:100]}" if code else "")
    return ""


def _short(path: str) -> str:
    """A source path as the user knows it: relative to the working folder, inside its package,
    or its last three parts."""
    import os

    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    rel = os.path.relpath(path) if os.path.isabs(path) else path
    return rel if not rel.startswith("..") else "/".join(path.split("/")[-3:])


def _module(node: Any) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path, kind = list(stack.values())[-1]
    kind = str(getattr(kind, "__name__", kind)).rsplit(".", 1)[-1]
    return f"{path} ({kind})" if path else ""


def _is_complex(node: Any) -> bool:
    val = node.meta.get("val")
    return bool(getattr(val, "is_complex", lambda: False)()) if hasattr(val, "is_complex") else False


def _complex(ep: Any) -> list[Blocker]:
    for node in ep.graph.nodes:
        if node.op != "call_function":
            continue
        target = str(node.target)
        if _is_complex(node) or _COMPLEX_OPS.search(target):
            return [
                Blocker(
                    op=target,
                    formats=COMPLEX_BLOCKS,
                    source=_source(node),
                    module=_module(node),
                    reason="the model computes with complex numbers, which no converter here takes "
                    "(LiteRT, ONNX, ExecuTorch)",
                    fix="move that computation (e.g. SPSL's phase spectrum) out of the model into preprocessing "
                    "on the phone, and export the network that takes its result as an input channel",
                )
            ]
    return []


def _no_litert_lowering(ep: Any) -> list[Blocker]:
    from edgekit._capture import captured_output
    from edgekit._io import interrupts_held

    try:
        with captured_output(), interrupts_held():
            from litert_torch.backend.lowerings import registry

        decomposed = ep.run_decompositions()
    except Exception:  # the converter will speak for itself
        return []
    for node in decomposed.graph.nodes:
        if node.op != "call_function" or str(node.target) in _NO_LOWERING_NEEDED:
            continue
        if registry.lookup(node.target) is None:
            return [
                Blocker(
                    op=str(node.target),
                    formats=("tflite",),
                    source=_source(node),
                    module=_module(node),
                    reason="the LiteRT converter has no lowering for an op of the model",
                    fix="replace it with supported ops (or leave the TFLite variants out), then export again",
                )
            ]
    return []


def _binary_layers(ep: Any) -> list[BinaryLayer]:
    """Convolutions whose folded weights are +-alpha per output channel."""
    import torch

    sig = ep.graph_signature
    named = {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
             **getattr(sig, "inputs_to_lifted_tensor_constants", {})}  # fmt: skip
    state = {**ep.state_dict, **getattr(ep, "constants", {})}
    known: dict[Any, Any] = {}
    found: list[BinaryLayer] = []
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in named and named[node.name] in state:
            known[node] = state[named[node.name]]
            continue
        if node.op != "call_function":
            continue
        deps = node.all_input_nodes
        if deps and all(d in known for d in deps):
            _fold(node, known)
        target = str(node.target)
        if not (target.startswith("aten.conv2d") or target.startswith("aten.convolution")):
            continue
        weight = node.args[1] if len(node.args) > 1 else None
        w = known.get(weight)
        if not isinstance(w, torch.Tensor) or w.dim() != 4 or w[0].numel() < 2:
            continue
        if _two_values_per_channel(w.detach().float().cpu().numpy()):
            src = node.args[0]
            found.append(BinaryLayer(_module(node) or node.name, node.name, int(w.shape[0]), int(w[0].numel()),
                                     "sign" in str(getattr(src, "target", ""))))  # fmt: skip
    return found


def _fold(node: Any, known: dict[Any, Any]) -> None:
    """Evaluate a node whose inputs are all constants (weights computed in forward)."""
    import torch

    def arg(a: Any) -> Any:
        return known[a] if isinstance(a, torch.fx.Node) else a

    try:
        with torch.no_grad():
            args = torch.fx.node.map_aggregate(node.args, arg)
            kwargs = torch.fx.node.map_aggregate(node.kwargs, arg)
            value = node.target(*args, **kwargs)
    except Exception:
        return
    if isinstance(value, torch.Tensor) and value.numel() <= _MAX_FOLD_ELEMENTS:
        known[node] = value


def _two_values_per_channel(w: np.ndarray) -> bool:
    flat = np.abs(w.reshape(w.shape[0], -1))
    top = flat.max(axis=1)
    if not np.all(top > 0):
        return False
    return bool(np.all(np.abs(flat - top[:, None]) <= 1e-6 * top[:, None]))


def fold_computed_weights(gm: Any) -> list[str]:
    """Replace convolution/linear weights computed in forward from parameters alone (a binary
    layer's ``sign(w) * scale``) by constants holding their values, in place; returns the folded
    nodes' names. PT2E quantization needs a weight it can observe as a stored tensor (it fails on
    a computed one with "Expected get_attr node, got call_function")."""
    import torch

    known: dict[Any, Any] = {}
    for node in gm.graph.nodes:
        if node.op == "get_attr":
            value: Any = gm
            for part in str(node.target).split("."):
                value = getattr(value, part, None)
            if isinstance(value, torch.Tensor):
                known[node] = value
        elif (
            node.op == "call_function"
            and node.all_input_nodes
            and all(d in known for d in node.all_input_nodes)
        ) and not re.search(r"rand|dropout|empty|bernoulli", str(node.target)):
            _fold(node, known)
    folded: list[str] = []
    for node in list(gm.graph.nodes):
        target = str(node.target)
        if node.op != "call_function" or not re.match(r"aten\.(conv\w*|linear|convolution)\.", target):
            continue
        weight = node.args[1] if len(node.args) > 1 else None
        if weight is None or getattr(weight, "op", "") != "call_function" or weight not in known:
            continue
        name = next(
            f"_edgekit_folded_{i}"
            for i in range(len(folded), 1 << 20)
            if not hasattr(gm, f"_edgekit_folded_{i}")
        )
        # a parameter, as a stored weight is: PT2E's conv-BN fusion writes the fused weight back as one
        gm.register_parameter(name, torch.nn.Parameter(known[weight].detach().clone().contiguous(), False))
        with gm.graph.inserting_before(node):
            const = gm.graph.get_attr(name)
        const.meta.update(
            {k: v for k, v in weight.meta.items() if k in ("val", "tensor_meta")}
        )  # quantizers read them
        node.replace_input_with(weight, const)
        folded.append(weight.name)
    if folded:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return folded


def binary_weights_in_int8(tflite: bytes) -> int:
    """How many INT8 convolutions of a ``.tflite`` hold only -127 and +127 (one binary layer's
    +-alpha on a per-channel scale, stored exactly): read from the file, not assumed."""
    from edgekit.exporters.tflite_graph import TFLiteGraph

    g = TFLiteGraph(tflite)
    exact = 0
    for op in g.ops():
        if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D") or len(op.inputs) < 2:
            continue
        w = g.constant(op.inputs[1])
        if (
            w is not None
            and w.dtype == np.int8
            and w.size > w.shape[0]
            and np.all(np.abs(w.astype(np.int16)) == 127)
        ):
            exact += 1
    return exact
