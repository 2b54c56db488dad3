"""ExecuTorch ``.pte`` variants (``--executorch``): FP32 and INT8, lowered to XNNPACK.

FP32: ``torch.export`` -> ``to_edge_transform_and_lower`` with ``XnnpackPartitioner`` ->
``to_executorch``. INT8: torchao's PT2E flow with ExecuTorch's XNNPACK quantizer (symmetric,
per-channel weights, static activations) calibrated on the same images as the TFLite and ONNX
INT8 variants, then lowered the same way. Ops XNNPACK does not take stay on ExecuTorch's
portable CPU kernels; they are counted per file as for TFLite (``delegation`` in the manifest).
Needs the optional extra ``edgekit[executorch]`` (executorch 1.5.1, which pulls heavy
dependencies); without it the variant fails with that one line.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from edgekit._capture import captured_output
from edgekit.errors import ExportError
from edgekit.exporters.preflight import fold_computed_weights
from edgekit.exporters.registry import ExportContext, declare_flag, register
from edgekit.runners.base import Delegation

declare_flag("executorch", "Also export ExecuTorch .pte (FP32; INT8 with --int8), lowered to XNNPACK.")

INSTALL_HINT = 'ExecuTorch variants need the executorch extra: pip install "edgekit[executorch]"'
_DELEGATE = "executorch_call_delegate"


def _require() -> None:
    try:
        with captured_output():  # torchao's optional kernels log load failures on import
            import executorch.exir  # noqa: F401
    except ImportError:
        raise ExportError(INSTALL_HINT) from None


def _delegation(program: Any) -> Delegation:
    """XNNPACK partitions and the ops left to portable kernels in a lowered edge program."""
    calls = [n for n in program.graph.nodes if n.op == "call_function" and "getitem" not in str(n.target)]
    delegates = [n for n in calls if _DELEGATE in str(n.target)]
    left = Counter(_op_name(n.target) for n in calls if _DELEGATE not in str(n.target))
    inside = 0
    for node in delegates:
        lowered = getattr(program.graph_module, str(node.args[0].target), None)
        original = getattr(lowered, "original_module", None)
        graph = getattr(original, "graph", None)
        inside += sum(1 for n in graph.nodes if n.op == "call_function") if graph is not None else 1
    return Delegation(len(delegates), inside, inside + sum(left.values()), dict(sorted(left.items())))


def _op_name(target: Any) -> str:
    text = str(target)
    if ":" in text:  # "<EdgeOpOverload: aten.mean.dim>: schema = ..."
        text = text.split(":", 2)[1].strip(" >")
    return text


def _lower(ctx: ExportContext, exported: Any, name: str) -> bytes:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    try:
        with captured_output():
            edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
            ctx.cache[f"delegation:{name}"] = _delegation(edge.exported_program())
            data = edge.to_executorch().buffer
    except Exception as exc:  # the lowering raises many kinds; one line names the step
        raise ExportError(
            f"ExecuTorch lowering failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from exc
    return bytes(data)


@register("executorch_fp32", format="pte", precision="fp32", suffix="fp32", flags=("executorch",))
def export_executorch_fp32(ctx: ExportContext) -> bytes:
    """ExecuTorch FP32, XNNPACK-lowered."""
    import torch

    _require()
    with torch.inference_mode(False):
        exported = torch.export.export(ctx.module, (ctx.sample_input(),), strict=False)
    return _lower(ctx, exported, "executorch_fp32")


@register(
    "executorch_int8", format="pte", precision="int8", suffix="int8", needs_calibration=True,
    flags=("executorch", "int8"),
)  # fmt: skip
def export_executorch_int8(ctx: ExportContext) -> bytes:
    """ExecuTorch INT8 (PT2E with the XNNPACK quantizer), XNNPACK-lowered."""
    import torch

    _require()
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer()
    quantizer.set_global(get_symmetric_quantization_config(is_per_channel=True))
    sample = ctx.sample_input()
    try:
        with torch.inference_mode(False), captured_output():
            graph = torch.export.export(ctx.module, (sample,), strict=False).module()
            fold_computed_weights(graph)  # binary layers compute sign(w) * scale in forward
            prepared = prepare_pt2e(graph, quantizer)
            with torch.no_grad():
                for batch in ctx.calibration_batches():
                    prepared(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
            converted = convert_pt2e(prepared)
            exported = torch.export.export(converted, (sample,), strict=False)
    except Exception as exc:
        raise ExportError(
            f"ExecuTorch INT8 quantization failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from exc
    return _lower(ctx, exported, "executorch_int8")
