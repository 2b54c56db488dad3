"""The one place that drives ai-edge-quantizer: recipes, calibration and quantization.

edgekit's static INT8 recipe calibrates with a min/max tracker (the default moving
average collapses a single-logit output range) and keeps HARD_SWISH float (static INT8
HARD_SWISH is not delegated to XNNPACK, which would split the graph); with float I/O the
graph inputs and outputs stay float32 too. ``tflite_int8``, ``edgekit sensitivity`` and
``edgekit optimize`` all build on :func:`static_int8_recipe`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgekit._capture import captured_output
from edgekit.errors import ExportError, UsageError

#: Ops that stay float in edgekit's static INT8 recipe.
FLOAT_OPS = ("HARD_SWISH",)
#: Graph edges kept float for ``float_io``.
FLOAT_IO = ("INPUT", "OUTPUT")


def jsonable(obj: Any) -> Any:
    """An ai-edge-quantizer recipe (enums inside) as plain JSON data."""
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


#: bounds of a recipe file edgekit accepts (edgekit's own recipes hold one entry per layer)
MAX_RECIPE_ENTRIES = 4096
_MAX_REGEX = 1024
_ENTRY_KEYS = {"regex", "operation", "algorithm_key", "op_config"}
_OP_KEYS = {"activation_tensor_config", "weight_tensor_config", "compute_precision", "explicit_dequantize",
            "skip_checks", "min_weight_elements"}  # fmt: skip
_TENSOR_KEYS = {"num_bits", "symmetric", "granularity", "dtype", "block_size", "algorithm_params"}
_BITS = (2, 4, 8, 16, 32)


def check_recipe(recipe: Any, where: str) -> list[dict[str, Any]]:
    """``recipe`` (parsed JSON) if it is an ai-edge-quantizer recipe edgekit can hand over, else a
    :class:`UsageError` naming the entry and field (``where`` names the file). Checked against the
    installed ai-edge-quantizer's own names (ops, algorithms, granularities) before any conversion,
    so a bad file costs seconds and never surfaces as the quantizer's KeyError mid-export."""
    from ai_edge_quantizer import algorithm_manager, qtyping

    if not isinstance(recipe, list) or not recipe:
        raise UsageError(f"{where}: expected a non-empty JSON list of {{regex, operation, algorithm_key, "
                         "op_config} entries")  # fmt: skip
    if len(recipe) > MAX_RECIPE_ENTRIES:
        raise UsageError(f"{where}: {len(recipe)} entries; at most {MAX_RECIPE_ENTRIES} are accepted")
    ops = {"*"} | {o.value for o in qtyping.TFLOperationName}
    algorithms = {a.value for a in algorithm_manager.AlgorithmName}

    def choice(value: Any, allowed: set[str], field: str, at: str) -> None:
        if not isinstance(value, str) or value not in allowed:
            shown = ", ".join(sorted(allowed)) if len(allowed) <= 12 else f"one of {len(allowed)} names"
            raise UsageError(f"{where}: {at}: {field} {str(value)[:40]!r} is not one of {shown}")

    def tensor(cfg: Any, at: str) -> None:
        if not isinstance(cfg, dict) or not set(cfg) <= _TENSOR_KEYS or "num_bits" not in cfg:
            raise UsageError(f"{where}: {at} must be an object with num_bits and only {sorted(_TENSOR_KEYS)}")
        bits = cfg["num_bits"]
        if not isinstance(bits, int) or isinstance(bits, bool) or bits not in _BITS:
            raise UsageError(f"{where}: {at}: num_bits must be one of {_BITS}")
        if not isinstance(cfg.get("symmetric", True), bool):
            raise UsageError(f"{where}: {at}: symmetric must be true or false")
        choice(
            cfg.get("granularity", "TENSORWISE"),
            {g.value for g in qtyping.QuantGranularity},
            "granularity",
            at,
        )
        choice(cfg.get("dtype", "INT"), {d.value for d in qtyping.TensorDataType}, "dtype", at)
        block = cfg.get("block_size", 0)
        if not isinstance(block, int) or isinstance(block, bool) or block not in (0, 32, 64, 128, 256):
            raise UsageError(f"{where}: {at}: block_size must be 0, 32, 64, 128 or 256")
        params = cfg.get("algorithm_params", {})
        if not isinstance(params, dict) or not all(
            isinstance(v, (str, int, float, bool, type(None))) for v in params.values()
        ):
            raise UsageError(f"{where}: {at}: algorithm_params must map names to plain values")

    for i, entry in enumerate(recipe):
        at = f"entry {i}"
        if (
            not isinstance(entry, dict)
            or not {"regex", "operation", "algorithm_key"} <= set(entry) <= _ENTRY_KEYS
        ):
            raise UsageError(f"{where}: {at} must be an object with regex, operation, algorithm_key "
                             "(and op_config), nothing else")  # fmt: skip
        regex = entry["regex"]
        if not isinstance(regex, str) or len(regex) > _MAX_REGEX:
            raise UsageError(f"{where}: {at}: regex must be a string of at most {_MAX_REGEX} characters")
        try:
            re.compile(regex)
        except re.error as exc:
            raise UsageError(f"{where}: {at}: regex {regex[:40]!r} does not compile ({exc})") from None
        choice(entry["operation"], ops, "operation", at)
        choice(entry["algorithm_key"], algorithms, "algorithm_key", at)
        if entry["algorithm_key"] == "no_quantize":
            continue
        cfg = entry.get("op_config")
        if not isinstance(cfg, dict) or not set(cfg) <= _OP_KEYS or "weight_tensor_config" not in cfg:
            raise UsageError(f"{where}: {at}: op_config must be an object with weight_tensor_config and only "
                             f"{sorted(_OP_KEYS)}")  # fmt: skip
        tensor(cfg["weight_tensor_config"], f"{at} weight_tensor_config")
        if "activation_tensor_config" in cfg:
            tensor(cfg["activation_tensor_config"], f"{at} activation_tensor_config")
        choice(cfg.get("compute_precision", "FLOAT"), {c.value for c in qtyping.ComputePrecision},
               "compute_precision", at)  # fmt: skip
        for flag in ("explicit_dequantize", "skip_checks"):
            if not isinstance(cfg.get(flag, False), bool):
                raise UsageError(f"{where}: {at}: {flag} must be true or false")
        least = cfg.get("min_weight_elements", 0)
        if not isinstance(least, int) or isinstance(least, bool) or not 0 <= least < 2**31:
            raise UsageError(f"{where}: {at}: min_weight_elements must be a non-negative integer")
    from ai_edge_quantizer.recipe_manager import RecipeManager

    try:  # well-formed; now the quantizer's own policy (which op takes which bits and precision)
        RecipeManager().load_quantization_recipe(recipe)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        reason = " ".join(str(exc).split())[:240]
        raise UsageError(f"{where}: ai-edge-quantizer refuses it: {reason}") from None
    return recipe


def read_recipe(path: Any) -> list[dict[str, Any]]:
    """A ``--recipe`` file read (bounded, see :func:`edgekit.validate.read_json`) and checked."""
    from pathlib import Path

    from edgekit.validate import read_json

    where = f"--recipe {path}"
    try:
        recipe = read_json(Path(path), error=ValueError)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{where}: not a readable JSON recipe ({exc})") from exc
    return check_recipe(recipe, where)


def tensor_scope(tensor: str) -> str:
    """A recipe regex that matches exactly one op, by its output tensor name.

    ai-edge-quantizer matches recipes against the op's output names, each followed by ";".
    """
    return "^" + re.escape(tensor) + ";?$"


def signature_input(model: bytes) -> tuple[str, str]:
    """(signature key, input name) of a TFLite model's first signature."""
    from ai_edge_litert.interpreter import Interpreter

    sigs = Interpreter(model_content=model).get_signature_list()
    key = next(iter(sigs))
    return key, sigs[key]["inputs"][0]


def static_int8_recipe(
    float_ops: Sequence[str] = FLOAT_OPS, float_io: bool = True, float_tensors: Sequence[str] = ()
) -> Any:
    """edgekit's static INT8 recipe as a ``RecipeManager`` (extend it, or take its recipe);
    ``float_tensors`` names op sites (by output tensor) that stay float, e.g. :func:`sign_inputs`."""
    from ai_edge_quantizer import recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName

    rm = recipe_manager.RecipeManager()
    rm.add_static_config(".*", TFLOperationName.ALL_SUPPORTED, 8, 8)
    for op in (*float_ops, *FLOAT_IO) if float_io else tuple(float_ops):
        rm.add_quantization_config(".*", TFLOperationName(op), algorithm_key=AlgorithmName.NO_QUANTIZE)
    for tensor in float_tensors:
        rm.add_quantization_config(
            tensor_scope(tensor), TFLOperationName.ALL_SUPPORTED, algorithm_key=AlgorithmName.NO_QUANTIZE
        )
    return rm


def sign_inputs(model: bytes) -> list[str]:
    """Output tensors of a float ``.tflite``'s SIGN ops and of the ops that feed them (a binary
    network's ``x - shift``). INT8 rounds that input to a grid, and every value within half a step
    of zero becomes exactly 0, whose sign is 0 rather than +-1; kept float, only the few values
    the previous layer's rounding carries across zero change. Measured on tests/seeds.py's BNext
    model (256 sample images): 17.1 dB and 21 flips plain, 21.6 dB and 5 flips with these float."""
    from edgekit.exporters.tflite_graph import TFLiteGraph

    g = TFLiteGraph(model)
    ops = g.ops()
    producers = g.producers()
    names: list[str] = []
    for op in ops:
        if op.name != "SIGN":
            continue
        names.append(g.tensor_name(op.outputs[0]))
        if op.inputs and op.inputs[0] in producers:
            names.append(g.tensor_name(ops[producers[op.inputs[0]]].outputs[0]))
    return names


def mixed_recipe(
    fallback: Sequence[str], int4_fc: Sequence[str], float_io: bool = True
) -> list[dict[str, Any]]:
    """Static INT8 everywhere, FP32 for the ``fallback`` op tensors, dynamic INT4 weights for ``int4_fc``."""
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName

    rm = static_int8_recipe(float_io=float_io)
    for tensor in fallback:
        rm.add_quantization_config(
            tensor_scope(tensor), TFLOperationName.ALL_SUPPORTED, algorithm_key=AlgorithmName.NO_QUANTIZE
        )
    for tensor in int4_fc:
        rm.add_dynamic_config(tensor_scope(tensor), TFLOperationName.FULLY_CONNECTED, 4)
    recipe: list[dict[str, Any]] = jsonable(rm.get_quantization_recipe())
    return recipe


def single_op_recipe(kind: str, tensor: str, bits: int) -> list[dict[str, Any]]:
    """A recipe that quantizes just one op: static INT8, or dynamic INT4 weights (FC)."""
    from ai_edge_quantizer import recipe_manager
    from ai_edge_quantizer.qtyping import TFLOperationName

    rm = recipe_manager.RecipeManager()
    if bits == 8:
        rm.add_static_config(tensor_scope(tensor), TFLOperationName(kind), 8, 8)
    else:
        rm.add_dynamic_config(tensor_scope(tensor), TFLOperationName(kind), bits)
    recipe: list[dict[str, Any]] = jsonable(rm.get_quantization_recipe())
    return recipe


def named_recipe(name: str) -> Any:
    """One of ai-edge-quantizer's own recipes: ``dynamic_wi8_afp32``, ``weight_only_wi8_afp32``."""
    from ai_edge_quantizer import recipe

    if name not in ("dynamic_wi8_afp32", "weight_only_wi8_afp32"):
        raise UsageError(f"unknown ai-edge-quantizer recipe {name!r}")
    return getattr(recipe, name)()


def calibrate(base: bytes, recipe: Any, batches: Sequence[np.ndarray], num_threads: int = 1) -> Any:
    """Min/max statistics of every tensor of ``base`` under ``recipe`` (a recipe list or manager)."""
    from ai_edge_quantizer import calibrator, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    rm = recipe
    if not isinstance(recipe, recipe_manager.RecipeManager):
        rm = recipe_manager.RecipeManager()
        rm.load_quantization_recipe(recipe)
    key, name = signature_input(base)
    try:
        with captured_output():
            cal = calibrator.Calibrator(
                base, num_threads=num_threads, qsv_update_func=qsv_utils.min_max_update
            )
            cal.calibrate({key: [{name: b} for b in batches]}, rm)
    except Exception as exc:
        raise ExportError(
            f"ai-edge-quantizer calibration failed: {type(exc).__name__}: {str(exc)[:200]}"
        ) from exc
    return cal.get_model_qsvs()


def quantize(
    base: bytes,
    recipe: Any,
    batches: Sequence[np.ndarray] | None = None,
    qsvs: Any = None,
    num_threads: int = 1,
) -> bytes:
    """Quantize ``base`` with ``recipe``; calibrates on ``batches`` when the recipe needs it and no
    ``qsvs`` (precomputed statistics) are given."""
    from ai_edge_quantizer import quantizer, recipe_manager

    if isinstance(recipe, recipe_manager.RecipeManager):
        recipe = recipe.get_quantization_recipe()
    try:
        qt = quantizer.Quantizer(base, recipe)
        if qt.need_calibration and qsvs is None:
            if not batches:
                raise UsageError("this quantization recipe needs calibration images: pass --calib DIR")
            qsvs = calibrate(base, recipe, batches, num_threads)
        with captured_output():
            result = qt.quantize(qsvs, enable_progress_report=False)
    except (UsageError, ExportError):
        raise
    except Exception as exc:
        raise ExportError(f"ai-edge-quantizer failed: {type(exc).__name__}: {str(exc)[:300]}") from exc
    return bytes(result.quantized_model)


def fp16_weights(base: bytes) -> bytes:
    """Float16 weights of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED; float32 compute."""
    from ai_edge_quantizer import quantizer
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName

    qt = quantizer.Quantizer(base)
    for op in (
        TFLOperationName.CONV_2D,
        TFLOperationName.DEPTHWISE_CONV_2D,
        TFLOperationName.FULLY_CONNECTED,
    ):
        qt.add_weight_only_config(".*", op, 16, algorithm_key=AlgorithmName.FLOAT_CASTING)
    try:
        with captured_output():
            result = qt.quantize(enable_progress_report=False)
    except Exception as exc:
        raise ExportError(f"ai-edge-quantizer FP16 cast failed: {type(exc).__name__}: {exc}") from exc
    return bytes(result.quantized_model)


def activation_samples(
    base: bytes, qsvs: dict[str, Any], batches: Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    """A bounded sample (at most 8192 values per image) of every calibrated activation of
    ``base`` on ``batches``; graph outputs are left out (they keep min/max: extreme scores matter)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with captured_output():
        interp = Interpreter(
            model_content=base,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            experimental_preserve_all_tensors=True,
        )
        interp.allocate_tensors()
    details = {d["name"]: d for d in interp.get_tensor_details()}
    edges = {d["name"] for d in interp.get_output_details()}
    wanted = [n for n in qsvs if n in details and n not in edges]
    rng = np.random.default_rng(0)
    samples: dict[str, list[np.ndarray]] = {n: [] for n in wanted}
    index = interp.get_input_details()[0]["index"]
    for batch in batches:
        interp.set_tensor(index, np.ascontiguousarray(batch, dtype=np.float32))
        interp.invoke()
        for name in wanted:
            values = np.asarray(interp.get_tensor(details[name]["index"]), dtype=np.float32).ravel()
            if values.size > 8192:  # a bounded sample per image keeps memory flat on big models
                values = rng.choice(values, 8192, replace=False)
            samples[name].append(values)
    return {n: (np.concatenate(v) if v else np.zeros(1, np.float32)) for n, v in samples.items()}


def narrowed_qsvs(
    qsvs: dict[str, Any], samples: dict[str, np.ndarray], percentile: float | None
) -> dict[str, Any]:
    """``qsvs`` with every sampled activation range narrowed: to the ``percentile``-th percentile
    of its values, or (``percentile=None``) to the range among a few percentiles that gives the
    least 8-bit quantization error (rounding plus clipping) on its values
    (:func:`edgekit.compress.ranges.activation_range`).

    Min/max lets one rare outlier stretch a tensor's range so that the common values get a
    handful of INT8 levels; clipping the top 0.01-0.1% is the usual cure, and the MSE choice
    makes it per tensor (Nagel et al. 2021, "A White Paper on Neural Network Quantization",
    section 3.5). The graph input is narrowed too: layout ops after it (TRANSPOSE) must share
    its quantization.
    """
    from edgekit.compress.ranges import activation_range

    out = dict(qsvs)
    for name, values in samples.items():
        lo, hi = activation_range(values, percentile)
        old = qsvs[name]
        new_min = np.maximum(np.asarray(old["min"], np.float32), np.float32(lo))
        new_max = np.minimum(np.asarray(old["max"], np.float32), np.float32(hi))
        out[name] = {
            **old,
            "min": new_min.reshape(np.shape(old["min"])),
            "max": new_max.reshape(np.shape(old["max"])),
        }
    return out


def percentile_qsvs(
    base: bytes, qsvs: dict[str, Any], batches: Sequence[np.ndarray], percentile: float
) -> dict[str, Any]:
    """``qsvs`` with every activation range narrowed to the ``percentile``-th percentile of its
    values on ``batches`` (see :func:`narrowed_qsvs`)."""
    return narrowed_qsvs(qsvs, activation_samples(base, qsvs, batches), percentile)


def _activations_in_order(model: bytes) -> list[str] | None:
    """Names of the graph input(s) and every op output, in execution order."""
    from ai_edge_litert.interpreter import Interpreter

    with captured_output():
        interp = Interpreter(model_content=model)
    names = {d["index"]: d["name"] for d in interp.get_tensor_details()}
    order = [names[d["index"]] for d in interp.get_input_details()]
    for op in interp._get_ops_details():
        order += [names[int(i)] for i in op["outputs"] if int(i) in names]
    return order


def transplant_ranges(
    src_qsvs: dict[str, Any], src: bytes, dst_qsvs: dict[str, Any], dst: bytes
) -> dict[str, Any]:
    """``dst_qsvs`` with every activation range replaced by ``src``'s range of the same tensor.

    For two conversions of one graph whose weights differ (a bias-corrected copy): the tensor
    names of the two files need not agree (the converter numbers constants), so tensors are
    paired by their position among op outputs. Raises ExportError if the graphs differ.
    """
    a, b = _activations_in_order(src), _activations_in_order(dst)
    if a is None or b is None or len(a) != len(b):
        raise ExportError("the corrected model's graph differs from the original's; cannot reuse its ranges")
    out = dict(dst_qsvs)
    for s_name, d_name in zip(a, b, strict=True):
        if s_name in src_qsvs and d_name in out:
            out[d_name] = src_qsvs[s_name]
    return out
