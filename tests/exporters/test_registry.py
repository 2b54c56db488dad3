from __future__ import annotations

import pytest

from edgekit.errors import UsageError
from edgekit.exporters import available, get_variant, register


def test_every_variant_declares_its_shape() -> None:
    variants = available()
    assert len(variants) >= 8
    files = set()
    for name, info in variants.items():
        assert info.name == name
        assert info.format in {"tflite", "onnx"}
        assert info.precision in {"fp32", "fp16", "int8", "mixed"}
        assert info.description, name
        files.add(info.filename("m"))
    assert len(files) == len(variants)  # no two variants write the same file
    assert {n for n, v in variants.items() if v.needs_calibration} == {
        "tflite_int8",
        "tflite_int8_io",
        "onnx_int8",
    }


def test_unknown_variant_lists_valid_ones() -> None:
    with pytest.raises(UsageError, match="tflite_fp32"):
        get_variant("tflite_int3")


def test_double_registration_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="twice"):
        register("tflite_fp32", format="tflite", precision="fp32", suffix="x")(lambda ctx: b"")
