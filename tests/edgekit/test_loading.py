from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from edgekit.errors import ModelLoadError, UsageError
from edgekit.loading import load_model, unwrap_state_dict
from edgekit.spec import ModelSource
from tests.conftest import TINY_ARCH
from tests.models import build_tiny

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


MARKER = Path("/tmp/edgekit-loading-marker")


def _same_as_tiny(module: torch.nn.Module) -> None:
    with torch.inference_mode():
        torch.testing.assert_close(module(X), build_tiny()(X))


def test_pt2_records_shape(tiny_pt2: Path) -> None:
    loaded = load_model(ModelSource(path=tiny_pt2))
    assert loaded.kind == "pt2" and loaded.recorded_input_shape == (1, 3, 32, 32)
    assert loaded.sha256 and len(loaded.sha256) == 64
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module(X[:1]), build_tiny()(X[:1]))


def test_state_dict_with_arch_and_dropout_replaced(tiny_state_dict: Path) -> None:
    loaded = load_model(ModelSource(path=tiny_state_dict, arch=TINY_ARCH))
    assert loaded.kind == "state_dict"
    assert not any(isinstance(m, torch.nn.Dropout) for m in loaded.module.modules())
    assert any("Dropout" in n for n in loaded.notes)
    _same_as_tiny(loaded.module)


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module_prefix"])
def test_checkpoint_wrappers(tmp_path: Path, wrap: str) -> None:
    sd = build_tiny().state_dict()
    obj: object
    if wrap == "module_prefix":
        obj = {"epoch": 3, "model": {f"module.{k}": v for k, v in sd.items()}}
    else:
        obj = {"epoch": 3, "optimizer": {"lr": 0.1}, wrap: sd}
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    _same_as_tiny(load_model(ModelSource(path=path, arch=TINY_ARCH)).module)


def test_arch_only_uses_factory_weights() -> None:
    loaded = load_model(ModelSource(arch=TINY_ARCH, arch_kwargs={"seed": 0}))
    assert loaded.kind == "arch" and loaded.path is None
    _same_as_tiny(loaded.module)


def test_state_dict_without_arch(tiny_state_dict: Path) -> None:
    with pytest.raises(ModelLoadError, match="pass --arch"):
        load_model(ModelSource(path=tiny_state_dict))


def test_state_dict_that_does_not_fit(tiny_state_dict: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not fit --arch: size mismatch"):
        load_model(ModelSource(path=tiny_state_dict, arch=TINY_ARCH, arch_kwargs={"width": 4}))


def test_pickled_module_needs_trust(tmp_path: Path) -> None:
    path = tmp_path / "whole.pt"
    torch.save(build_tiny(), path)
    with pytest.raises(ModelLoadError, match="--trust-pickle"):
        load_model(ModelSource(path=path))
    loaded = load_model(ModelSource(path=path, trust_pickle=True))
    assert loaded.kind == "pickle"
    _same_as_tiny(loaded.module)


def test_torchscript_is_refused_with_fix(tmp_path: Path) -> None:
    path = tmp_path / "ts.pt"
    torch.jit.save(torch.jit.trace(build_tiny(), X[:1]), str(path))
    with pytest.raises(ModelLoadError, match=r"TorchScript.*torch\.export\.save"):
        load_model(ModelSource(path=path))


def test_missing_and_corrupt(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(ModelSource(path=tmp_path / "none.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x02garbage")
    with pytest.raises(ModelLoadError, match="not a readable PyTorch file"):
        load_model(ModelSource(path=bad, arch=TINY_ARCH))
    bad2 = tmp_path / "bad.pt2"
    bad2.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelLoadError, match=r"\.pt2"):
        load_model(ModelSource(path=bad2))


@pytest.mark.parametrize(
    ("arch", "match"),
    [
        ("no_such_pkg.models:build", "cannot import"),
        ("tests.models:nope", "no callable"),
        ("tests.models:not_a_module", "not a torch.nn.Module"),
    ],
)
def test_arch_errors(arch: str, match: str) -> None:
    with pytest.raises(ModelLoadError, match=match):
        load_model(ModelSource(arch=arch))


def test_arch_syntax() -> None:
    with pytest.raises(UsageError, match=r"package\.module:factory"):
        load_model(ModelSource(arch="just_a_name"))


def test_state_dict_with_missing_keys(tmp_path: Path) -> None:
    sd = build_tiny().state_dict()
    sd.pop("head.bias")
    path = tmp_path / "partial.pth"
    torch.save(sd, path)
    with pytest.raises(ModelLoadError, match="1 missing keys"):
        load_model(ModelSource(path=path, arch=TINY_ARCH))


def test_unwrap_rejects_empty() -> None:
    with pytest.raises(ModelLoadError):
        unwrap_state_dict({"epoch": 1})


def test_a_raw_pickle_is_named_as_pickled_objects(tmp_path: Path) -> None:
    import argparse
    import pickle

    path = tmp_path / "ckpt.pth"
    path.write_bytes(pickle.dumps({"args": argparse.Namespace(lr=1), "epoch": 3}))
    with pytest.raises(ModelLoadError, match="names argparse.Namespace: loading it would .*--trust-pickle"):
        load_model(ModelSource(path=path, arch=TINY_ARCH))


class _RunsACommand:
    """What a malicious checkpoint holds: unpickling it calls os.system."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {MARKER}",))


@pytest.mark.parametrize("how", ["torch.save", "torch.save nested", "raw pickle"])
def test_a_malicious_object_is_refused_naming_its_global(tmp_path: Path, how: str) -> None:
    """Issue 25: a torch.save'd object naming os.system was told "not a readable PyTorch file
    (UnpicklingError); check it is not truncated". It is named now, and never run."""
    import pickle

    path = tmp_path / "model.pth"
    if how == "raw pickle":
        path.write_bytes(pickle.dumps(_RunsACommand()))
    else:
        torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _RunsACommand()} if "nested" in how
                   else _RunsACommand(), path)  # fmt: skip
    MARKER.unlink(missing_ok=True)
    with pytest.raises(ModelLoadError) as info:
        load_model(ModelSource(path=path, arch=TINY_ARCH))
    said = str(info.value)
    assert f"names {os.system.__module__}.system: loading it would import and run that code" in said
    assert "--trust-pickle" in said and "\n" not in said and not MARKER.exists()
    # a whole nn.Module names its own classes the same way
    torch.save(build_tiny(), tmp_path / "whole.pt")
    with pytest.raises(ModelLoadError, match=r"names tests\.models\.\w+"):
        load_model(ModelSource(path=tmp_path / "whole.pt"))


def test_a_bit_flipped_pt2_fails_its_crc(tiny_pt2: Path, tmp_path: Path) -> None:
    import zipfile

    data = bytearray(tiny_pt2.read_bytes())
    with zipfile.ZipFile(tiny_pt2) as zf:
        info = max(zf.infolist(), key=lambda i: i.compress_size)  # the weights
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2
    data[offset] ^= 0x10
    flipped = tmp_path / "flipped.pt2"
    flipped.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="fails its CRC check"):
        load_model(ModelSource(path=flipped))


@pytest.mark.parametrize("body", ["import sys\nsys.exit(0)\n", "import sys\ndef build():\n    sys.exit(3)\n"])
def test_system_exit_inside_an_arch_module_is_a_load_error(
    body: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"exiter_{abs(hash(body))}"
    (tmp_path / f"{name}.py").write_text(body + "def build_other():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelLoadError, match="SystemExit"):
        load_model(ModelSource(arch=f"{name}:build"))


def test_outputs_without_a_batch_dimension_or_several_outputs(tmp_path: Path) -> None:
    import torch

    from edgekit.loading import probe_output, select_output
    from edgekit.spec import InputSpec, OutputSpec

    class Scalar(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean()

    class Three(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            m = x.mean((1, 2, 3)).unsqueeze(1)
            return torch.zeros(1, 512), m, torch.zeros(1, 7)

    spec = InputSpec(shape=(1, 3, 8, 8))
    with pytest.raises(UsageError, match="batch dimension"):
        probe_output(Scalar(), spec, OutputSpec())
    with pytest.raises(UsageError, match="returns 3 outputs; pass --output-index"):
        probe_output(Three(), spec, OutputSpec())
    with pytest.raises(UsageError, match="returns 3 output"):
        probe_output(Three(), spec, OutputSpec(), output_index=5)
    assert probe_output(Three(), spec, OutputSpec(), output_index=1).classes == 1
    picked = select_output(Three(), 1)(torch.ones(1, 3, 8, 8))
    assert picked.shape == (1, 1) and float(picked) == 1.0


def test_arch_takes_class_methods_and_modules_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_factories.py").write_text(
        "from tests.models import build_tiny\n"
        "class Detector:\n"
        "    @classmethod\n"
        "    def from_name(cls, name, width=8):\n"
        "        assert name == 'tiny'\n"
        "        return build_tiny(width=width)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(tmp_path))])
    loaded = load_model(ModelSource(arch="my_factories:Detector.from_name", arch_kwargs={"name": "tiny"}))
    assert loaded.kind == "arch"
    with pytest.raises(ModelLoadError, match="no callable"):
        load_model(ModelSource(arch="my_factories:Detector.nope"))
    with pytest.raises(UsageError, match="Class.method"):
        load_model(ModelSource(arch="my_factories:Detector..x"))
