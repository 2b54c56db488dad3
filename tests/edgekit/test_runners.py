"""One conformance test every runner must pass: same feeds, same contract, same answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import UsageError
from edgekit.runners import Runner, run_batch
from edgekit.spec import InputSpec
from tests.models import build_tiny

X = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def runners(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Runner]:
    from edgekit.exporters import ExportContext
    from edgekit.exporters.onnx import float_onnx
    from edgekit.exporters.tflite import float_tflite
    from edgekit.runners.litert import LiteRTRunner
    from edgekit.runners.onnxruntime import OnnxRuntimeRunner
    from edgekit.runners.torch import TorchRunner

    tmp = tmp_path_factory.mktemp("runners")
    model = build_tiny()
    ctx = ExportContext(module=model, input_spec=InputSpec((1, 3, 32, 32)), calibration=X)
    (tmp / "m.tflite").write_bytes(float_tflite(ctx))
    (tmp / "m.onnx").write_bytes(float_onnx(ctx))
    return {
        "torch": TorchRunner(model, (1, 3, 32, 32)),
        "litert": LiteRTRunner(Path(tmp / "m.tflite")),
        "onnxruntime": OnnxRuntimeRunner(tmp / "m.onnx"),
    }


@pytest.mark.parametrize("backend", ["torch", "litert", "onnxruntime"])
def test_runner_contract(runners: dict[str, Runner], backend: str) -> None:
    r = runners[backend]
    assert r.backend == backend
    assert r.input_shape == (1, 3, 32, 32)
    out = r.infer({r.input_name: X[:1]})
    assert len(out) == 1 and next(iter(out.values())).shape == (1, 1)
    with pytest.raises(UsageError, match="expects shape"):
        r.infer({r.input_name: X[:2]})
    with pytest.raises(UsageError, match="expects input"):
        r.infer({"wrong": X[:1]})


def test_runners_agree(runners: dict[str, Runner]) -> None:
    ref = run_batch(runners["torch"], X)
    for name in ("litert", "onnxruntime"):
        np.testing.assert_allclose(run_batch(runners[name], X), ref, atol=1e-5, err_msg=name)


def test_litert_reports_full_delegation(runners: dict[str, Runner]) -> None:
    from edgekit.runners.litert import LiteRTRunner

    r = runners["litert"]
    assert isinstance(r, LiteRTRunner)
    d = r.delegation()
    assert d.fully_delegated and d.delegated_ops == d.total_ops > 3
