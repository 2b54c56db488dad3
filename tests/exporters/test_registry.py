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
        assert info.format in {"tflite", "onnx", "pte"}
        assert info.precision in {"fp32", "fp16", "int8", "mixed"}
        assert info.description, name
        files.add(info.filename("m"))
    assert len(files) == len(variants)  # no two variants write the same file
    assert {n for n, v in variants.items() if v.needs_calibration} == {
        "tflite_int8",
        "tflite_int8_io",
        "onnx_int8",
        "executorch_int8",
    }


def test_unknown_variant_lists_valid_ones() -> None:
    with pytest.raises(UsageError, match="tflite_fp32"):
        get_variant("tflite_int3")


def test_double_registration_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="twice"):
        register("tflite_fp32", format="tflite", precision="fp32", suffix="x")(lambda ctx: b"")


def test_flags_select_variants_in_registration_order() -> None:
    from edgekit.exporters import flags, variants_for

    assert variants_for(set()) == ("tflite_fp32",)
    assert variants_for({"int8", "onnx"}) == ("tflite_fp32", "tflite_int8", "onnx_fp32", "onnx_int8")
    assert "onnx_fp16" not in variants_for({"fp16"})  # ONNX FP16 needs both --onnx and --fp16
    declared = set(flags())
    for name, info in available().items():
        assert set(info.flags) <= declared | {"recipe"}, name
    for flag in declared:
        assert variants_for({flag}) != ("tflite_fp32",), f"flag {flag} selects nothing"


def test_export_help_lists_every_declared_flag() -> None:
    from typer.testing import CliRunner

    from edgekit.cli import app
    from edgekit.exporters import flags

    result = CliRunner().invoke(app, ["export", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in flags().values():
        assert flag.option in result.output, flag.option
    flag_lines = [ln for ln in result.output.splitlines() if "--" in ln and "--help" not in ln]
    assert not [
        ln for ln in flag_lines if "<bool>" in ln
    ]  # plain flags: "--fp16 true" is not how they are used
    for panel in ("Model", "Variants", "Calibration", "Parity", "Output"):
        assert f"─ {panel} " in result.output, panel
