"""Property-based checks of the parsers of untrusted files: whatever the input, the result is a
parsed object or an EdgekitError, never another exception."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekit.device.protocol import RunConfig, RunResult
from edgekit.errors import EdgekitError
from edgekit.evaluation.scorelog import Progress
from edgekit.manifest import manifest_from_dict

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)

_RESULT = {
    "schema": "edgekit.bench.result", "schema_version": 1, "run_id": "r1", "status": "ok", "app_version": "0.1.0",
    "engine": "compiled_model", "accelerator_requested": "cpu", "accelerator_used": "cpu",
    "available_accelerators": ["cpu"], "threads": 1, "load_ms": 1.0, "first_inference_ms": 1.0,
    "timings_ms": [1.0, 2.0], "outputs": [{"file": "out_0.bin", "dtype": "float32", "shape": [1, 1]}],
    "memory": {"after_runs": {"vm_rss_kb": 1, "vm_hwm_kb": 2}}, "device": {}, "thermal": {}, "emulated": True,
}  # fmt: skip
_CONFIG = {
    "schema": "edgekit.bench.config", "schema_version": 1, "run_id": "r1", "model": "m.tflite",
    "model_sha256": "0" * 64, "model_size": 10, "inputs": [{"file": "in_0.bin", "dtype": "float32", "shape": [1, 3]}],
}  # fmt: skip
_MANIFEST = {
    "schema": "edgekit.manifest", "schema_version": 1, "name": "m", "created": "now",
    "source": {"path": "m.pt2", "sha256": None, "kind": "pt2", "arch": None, "arch_kwargs": {}, "notes": []},
    "input": {"shape": [1, 3, 8, 8]}, "output": {"kind": "logits", "classes": 1, "positive_index": 0},
    "preprocess": {"height": 8, "width": 8, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}, "threshold": 0.5,
    "calibration": None, "parity_data": {"inputs_file": "parity_inputs.npy", "reference_file": "parity_reference.npy"},
    "reference": {}, "tools": {},
    "variants": [{"name": "tflite_fp32", "file": "m.fp32.tflite", "format": "tflite", "precision": "fp32",
                  "status": "ok", "size_bytes": 1, "sha256": "0" * 64}],
}  # fmt: skip


def _mutations(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with some keys replaced by arbitrary JSON values, dropped, or nested values replaced."""

    def apply(changes: list[tuple[str, Any, bool]]) -> dict[str, Any]:
        d = json.loads(json.dumps(base))
        for key, value, drop in changes:
            if drop:
                d.pop(key, None)
            else:
                d[key] = value
        return d

    keys = st.sampled_from(sorted(base))
    return st.lists(st.tuples(keys, JSON, st.booleans()), min_size=1, max_size=4).map(apply)


def _parses_or_edgekit_error(parse: Any, value: Any) -> None:
    try:
        parse(value)
    except EdgekitError as exc:
        assert str(exc) and "\n" not in str(exc).strip()


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(_mutations(_RESULT))
def test_result_json_mutations(d: dict[str, Any]) -> None:
    _parses_or_edgekit_error(RunResult.from_json, json.dumps(d))


@SETTINGS
@given(_mutations(_CONFIG))
def test_config_json_mutations(d: dict[str, Any]) -> None:
    _parses_or_edgekit_error(RunConfig.from_json, json.dumps(d))


@SETTINGS
@given(st.text(max_size=200) | JSON.map(json.dumps))
def test_result_and_config_arbitrary_text(text: str) -> None:
    _parses_or_edgekit_error(RunResult.from_json, text)
    _parses_or_edgekit_error(RunConfig.from_json, text)


@SETTINGS
@given(_mutations(_MANIFEST))
def test_manifest_mutations(d: dict[str, Any]) -> None:
    _parses_or_edgekit_error(manifest_from_dict, d)


@SETTINGS
@given(JSON)
def test_manifest_arbitrary_json(value: Any) -> None:
    _parses_or_edgekit_error(manifest_from_dict, value)


def test_the_unmutated_bases_parse() -> None:
    assert RunResult.from_json(json.dumps(_RESULT)).status == "ok"
    assert RunConfig.from_json(json.dumps(_CONFIG)).model == "m.tflite"
    assert manifest_from_dict(json.loads(json.dumps(_MANIFEST))).variants[0].name == "tflite_fp32"


@SETTINGS
@given(
    _mutations(_MANIFEST["variants"][0]), _mutations(_MANIFEST["preprocess"]), _mutations(_MANIFEST["output"])
)
def test_manifest_nested_mutations(variant: dict[str, Any], pre: dict[str, Any], out: dict[str, Any]) -> None:
    for key, value in (("variants", [variant]), ("preprocess", pre), ("output", out)):
        _parses_or_edgekit_error(manifest_from_dict, {**_MANIFEST, key: value})


_PREPROCESS_RECORD = {"schema": "edgekit.preprocess", "schema_version": 1, "height": 8, "width": 8,
                      "resize": "bilinear", "color": "RGB", "scale": 1 / 255, "mean": [0.5] * 3, "std": [0.5] * 3}  # fmt: skip


@SETTINGS
@given(_mutations(_PREPROCESS_RECORD) | JSON)
def test_stored_preprocessing_mutations(d: Any) -> None:
    from edgekit.modelmeta import PREPROCESS_SCHEMA, parse_preprocess

    if isinstance(d, dict) and d.get("schema") == "edgekit.preprocess":
        d["schema"] = PREPROCESS_SCHEMA
    _parses_or_edgekit_error(lambda text: parse_preprocess(text, "model.pt2"), json.dumps(d))


_JOURNAL = Progress({"a": 1}, 10, [["f", "why"]], 0, 1, 3).to_dict()


@SETTINGS
@given(_mutations(_JOURNAL) | JSON)
def test_scoring_journal_mutations(d: Any) -> None:
    from pathlib import Path

    _parses_or_edgekit_error(lambda v: Progress.from_dict(v, Path("scores.progress.json")), d)


@SETTINGS
@given(JSON)
def test_faceforensics_split_files_of_any_shape(value: Any) -> None:
    import tempfile
    from pathlib import Path

    from edgekit.data.layouts import ReadOptions, read_data

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "original_sequences/youtube/c23/videos").mkdir(parents=True)
        (root / "original_sequences/youtube/c23/videos/000.mp4").write_bytes(b"\0")
        (root / "test.json").write_text(json.dumps(value))
        _parses_or_edgekit_error(lambda _: read_data(root, ReadOptions(split="test")), None)


def _recipe_entry() -> dict[str, Any]:
    from edgekit.exporters.aeq import jsonable, mixed_recipe

    return jsonable(mixed_recipe(["t"], ["u"]))[-1]


def _accepted_recipe_loads_in_the_quantizer(recipe: Any) -> None:
    """Whatever edgekit's check lets through, ai-edge-quantizer's own recipe loader reads (no
    KeyError/TypeError from inside it mid-export); whatever it refuses is one EdgekitError line."""
    from ai_edge_quantizer.recipe_manager import RecipeManager

    from edgekit.exporters.aeq import check_recipe

    try:
        accepted = check_recipe(recipe, "--recipe r.json")
    except EdgekitError as exc:
        assert str(exc).startswith("--recipe r.json") and "\n" not in str(exc)
        return
    RecipeManager().load_quantization_recipe(accepted)


@SETTINGS
@given(
    _mutations(_recipe_entry()),
    _mutations(_recipe_entry()["op_config"]),
    _mutations(_recipe_entry()["op_config"]["weight_tensor_config"]),
)
def test_recipe_mutations(entry: dict[str, Any], op: dict[str, Any], weights: dict[str, Any]) -> None:
    _accepted_recipe_loads_in_the_quantizer([entry])
    nested = _recipe_entry()
    nested["op_config"] = op
    _accepted_recipe_loads_in_the_quantizer([nested])
    nested["op_config"] = {**_recipe_entry()["op_config"], "weight_tensor_config": weights}
    _accepted_recipe_loads_in_the_quantizer([nested])


@SETTINGS
@given(JSON)
def test_recipe_arbitrary_json(value: Any) -> None:
    _accepted_recipe_loads_in_the_quantizer(value)
    _accepted_recipe_loads_in_the_quantizer([value])
