"""ONNX external data: a tensor whose data sits outside the model's folder (a relative escape, an
absolute path, a link out) is refused in one line before any runtime reads it; beside the model it loads."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import FileFormatError
from edgekit.runners import open_runner


def _model(folder: Path, location: str) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(2, 2), "W")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [weight])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    return folder / "model.onnx"


@pytest.mark.parametrize("where", ["../host.bin", "ABSOLUTE", "link.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path: Path, where: str) -> None:
    host = tmp_path / "host.bin"
    np.arange(4, dtype=np.float32).tofile(host)
    folder = tmp_path / "export"
    folder.mkdir()
    if where == "link.bin":
        os.symlink(host, folder / "link.bin")
    path = _model(folder, str(host) if where == "ABSOLUTE" else where)
    with pytest.raises(FileFormatError, match="outside the model's folder: refused") as info:
        open_runner("onnx", path)
    assert "\n" not in str(info.value)


def test_external_data_beside_the_model_loads(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    np.arange(4, dtype=np.float32).tofile(folder / "weights.bin")
    runner = open_runner("onnx", _model(folder, "weights.bin"))
    out = runner.infer({runner.input_name: np.ones((1, 2), np.float32)})
    assert np.allclose(next(iter(out.values())), [[2.0, 4.0]])
