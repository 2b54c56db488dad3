"""Loading the user's PyTorch model safely.

Order of trust: a ``.pt2`` ExportedProgram is the safe default; a state dict or
checkpoint is read with ``weights_only=True`` and needs ``--arch`` to build the
module; a whole pickled ``nn.Module`` runs arbitrary code when unpickled, so it is
only read with ``--trust-pickle``. TorchScript archives are refused with the fix.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit._capture import captured_output
from edgekit._io import sha256_file
from edgekit.errors import ModelLoadError, UsageError
from edgekit.modelmeta import read_preprocess
from edgekit.spec import InputSpec, ModelSource, OutputSpec

if TYPE_CHECKING:
    import torch

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "ema", "weights")


@dataclass
class LoadedModel:
    """An eval-mode module ready to trace, plus what we learned while loading it."""

    module: torch.nn.Module
    kind: str
    path: str | None
    sha256: str | None
    recorded_input_shape: tuple[int, ...] | None = None
    notes: list[str] = field(default_factory=list)
    #: the preprocessing stored in the model file (``edgekit.modelmeta``), if any
    preprocess: dict[str, Any] | None = None
    #: the torch.export program a .pt2 held (for re-exporting with a batch dimension)
    program: Any = None


def _zip_names(path: Path) -> list[str]:
    """Member names of a zip archive (.pt2 and torch.save files are zips), CRC-checked; [] for other files.

    A flipped bit in a model's weights still unpacks, and parity cannot see it (the reference
    uses the same weights), so every member is checked against its CRC before loading.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError):
        return []
    except (zipfile.LargeZipFile, RuntimeError, ValueError, NotImplementedError) as exc:
        raise ModelLoadError(
            f"{path} is a damaged archive ({type(exc).__name__}); re-save or re-copy it"
        ) from exc
    if bad is not None:
        raise ModelLoadError(
            f"{path} is corrupted: archive member {bad!r} fails its CRC check; re-save or re-copy the file"
        )
    return names


def _is_whole_pickle(path: Path) -> bool:
    """True when ``path`` is one complete pickle stream (read with pickletools, nothing executed)."""
    import pickletools

    try:
        with open(path, "rb") as fh:
            last = None
            for op, _, _ in pickletools.genops(fh):
                last = op.name
        return last == "STOP"
    except Exception:
        return False


def _pickled_globals(path: Path, zipped: bool) -> list[str]:
    """The ``module.name`` globals a pickle (raw, or inside a ``torch.save`` zip) would import,
    read without executing anything: those weights_only loading does not allow."""
    import pickletools

    if zipped:
        import torch

        try:
            return [str(g) for g in torch.serialization.get_unsafe_globals_in_checkpoint(str(path))]
        except Exception:  # unreadable: the caller's generic message applies
            return []
    found: list[str] = []
    strings = ["", ""]  # the last two string arguments: STACK_GLOBAL's module and name
    try:
        with open(path, "rb") as fh:
            for op, arg, _ in pickletools.genops(fh):
                if op.name == "GLOBAL":
                    found.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL":
                    found.append(f"{strings[0]}.{strings[1]}")
                elif isinstance(arg, str):
                    strings = [strings[1], arg[:200]]
                if len(found) >= 64:  # enough to name; a hostile file could list millions
                    break
    except Exception:
        pass  # a broken tail: keep what was read
    return list(dict.fromkeys(found))


def _pickle_refusal(path: Path, names: list[str]) -> str:
    """One line: which globals the pickle names, that loading it would run code, the way out."""
    zipped = bool(names)
    # the names from outside torch first: those are the code a user has to vouch for
    found = sorted(_pickled_globals(path, zipped), key=lambda g: (g.startswith("torch."), g))
    if found:
        shown = ", ".join(g[:80] for g in found[:3]) + (
            f" and {len(found) - 3} more" if len(found) > 3 else ""
        )
        what = f"names {shown}"
    else:
        what = "holds pickled Python objects (a whole nn.Module or other classes)"
    return (
        f"{path} {what}: loading it would import and run that code, so torch.load(weights_only=True) "
        "refuses it; pass --trust-pickle only if you trust its source, or save a state_dict and pass --arch"
    )


def _is_torchscript(names: list[str]) -> bool:
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def import_factory(arch: str) -> Callable[..., Any]:
    """Resolve ``module.path:factory`` or ``module.path:Class.method`` to a callable.

    Only ever called with what the user typed (``--arch``), never with a name read from a
    file. The working directory is on the import path, as for ``python -m``, so a factory
    module beside the user's data is found.
    """
    mod_name, sep, attr = arch.partition(":")
    if not sep or not mod_name or not attr or not all(part.isidentifier() for part in attr.split(".")):
        raise UsageError(
            f"--arch {arch!r} must look like package.module:factory or package.module:Class.method"
        )
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(mod_name)
    except (Exception, SystemExit) as exc:  # a module that calls sys.exit() on import must not end edgekit
        raise ModelLoadError(
            f"--arch: cannot import {mod_name!r} ({type(exc).__name__}: {exc}); "
            "check the module is on PYTHONPATH or installed"
        ) from exc
    factory: Any = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
    if not callable(factory):
        raise ModelLoadError(
            f"--arch: {mod_name!r} has no callable {attr!r}; name the function that builds the model"
        )
    return factory  # type: ignore[no-any-return]


def unwrap_state_dict(obj: Any) -> dict[str, Any]:
    """Find the tensor mapping inside common checkpoint wrappers and strip ``module.`` prefixes."""
    import torch

    current = obj
    for _ in range(3):
        if (
            isinstance(current, Mapping)
            and current
            and all(isinstance(v, torch.Tensor) for v in current.values())
        ):
            break
        if isinstance(current, Mapping):
            inner = next(
                (current[k] for k in _WRAPPER_KEYS if k in current and isinstance(current[k], Mapping)), None
            )
            if inner is None:
                break
            current = inner
    if not isinstance(current, Mapping) or not current:
        raise ModelLoadError(
            "the checkpoint holds no state dict (looked under " + ", ".join(_WRAPPER_KEYS) + ")"
        )
    tensors = {str(k): v for k, v in current.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelLoadError("the checkpoint's state dict holds no tensors")
    for prefix in ("module.", "_orig_mod.", "model."):
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
    return tensors


def _build_from_arch(source: ModelSource) -> torch.nn.Module:
    import torch

    assert source.arch is not None
    factory = import_factory(source.arch)
    try:
        module = factory(**source.arch_kwargs)
    except (Exception, SystemExit) as exc:
        raise ModelLoadError(f"--arch {source.arch} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(f"--arch {source.arch} returned {type(module).__name__}, not a torch.nn.Module")
    return module


def _load_state_dict_into(module: torch.nn.Module, state: dict[str, Any], where: str) -> None:
    import torch

    state = {
        k: (v.float() if v.is_floating_point() and v.dtype != torch.float32 else v) for k, v in state.items()
    }
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even with strict=False
        first = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), str(exc)[:200])
        raise ModelLoadError(f"{where} does not fit --arch: {first}; check --arch and --arch-kwargs") from exc
    if result.missing_keys or result.unexpected_keys:
        miss, extra = result.missing_keys, result.unexpected_keys
        raise ModelLoadError(
            f"{where} does not fit --arch: {len(miss)} missing keys (e.g. {miss[:2]}), "
            f"{len(extra)} unexpected (e.g. {extra[:2]}); check --arch and --arch-kwargs"
        )


def _pt2_input_shape(ep: Any, notes: list[str]) -> tuple[int, ...] | None:
    """The program's input shape; a symbolic (dynamic) batch becomes 1, as on the phone.

    ``int()`` of a symbolic dim gives the example value it was traced with (e.g. 2), so
    symbolic dims are recognised by type, not by conversion.
    """
    user_inputs = set(ep.graph_signature.user_inputs)
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            val = node.meta.get("val")
            if val is None or not hasattr(val, "shape"):
                return None
            dims = list(val.shape)
            symbolic = [type(d).__name__ == "SymInt" for d in dims]
            if any(symbolic[1:]):  # dynamic height/width: nothing fixed to record
                notes.append("the .pt2 has dynamic image dimensions; give --input-shape")
                return None
            if symbolic and symbolic[0]:
                notes.append("the .pt2 has a dynamic batch dimension; exported at batch 1")
                dims[0] = 1
            return tuple(int(d) for d in dims)
    return None


def _prepare(module: torch.nn.Module, notes: list[str]) -> torch.nn.Module:
    """Eval mode and Dropout -> Identity (a Dropout before the classifier breaks PT2E INT8)."""
    import torch

    module.eval()
    replaced = 0
    for name, child in list(module.named_modules()):
        for attr, sub in list(child.named_children()):
            if isinstance(sub, torch.nn.modules.dropout._DropoutNd):
                setattr(child, attr, torch.nn.Identity())
                replaced += 1
        del name
    if replaced:
        notes.append(f"replaced {replaced} Dropout layer(s) with Identity before export")
    return module


def load_model(source: ModelSource) -> LoadedModel:
    """Load the model described by ``source``; raises :class:`ModelLoadError` with the fix."""
    import torch

    notes: list[str] = []
    if source.path is None:
        if source.arch is None:
            raise UsageError("give a model file, or --arch module:factory")
        module = _build_from_arch(source)
        notes.append(f"weights as returned by {source.arch}")
        return LoadedModel(_prepare(module, notes), "arch", None, None, None, notes)

    path = Path(source.path)
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist; check the path")
    digest = sha256_file(path)
    names = _zip_names(path)
    if _is_torchscript(names):
        raise ModelLoadError(
            f"{path} is a TorchScript archive, which cannot be converted; in Python, save "
            "torch.export.export(model, (x,)) with torch.export.save(ep, 'model.pt2'), or save "
            "model.state_dict() and pass --arch"
        )
    if path.suffix == ".pt2" or any(n.endswith("serialized_exported_program.json") for n in names):
        if source.arch:
            raise UsageError("--arch is for state dicts; a .pt2 already holds its architecture")
        try:
            with captured_output():  # torch logs the whole traceback of a bad archive
                ep = torch.export.load(str(path))
        except Exception as exc:
            raise ModelLoadError(
                f"{path} is not a readable torch.export (.pt2) archive ({type(exc).__name__}); "
                "re-save it with torch.export.save"
            ) from exc
        shape = _pt2_input_shape(ep, notes)
        return LoadedModel(
            ep.module(), "pt2", str(path.resolve()), digest, shape, notes, read_preprocess(path), ep
        )

    try:
        with warnings.catch_warnings():  # torch warns about a raw pickle's protocol before refusing it
            warnings.simplefilter("ignore")
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc).lower()
        # torch words it "Unsupported global: GLOBAL x" or "unsupported GLOBAL x whose module is blocked"
        unsafe = "unsupported global" in text or (names and bool(_pickled_globals(path, True)))
        if unsafe or (not names and _is_whole_pickle(path)):
            if not source.trust_pickle:
                raise ModelLoadError(_pickle_refusal(path, names)) from exc
            return _load_pickle(path, digest, notes)
        raise ModelLoadError(
            f"{path} is not a readable PyTorch file ({type(exc).__name__}); check it is not truncated"
        ) from exc
    if isinstance(obj, torch.nn.Module):  # only reachable through allowlisted globals
        return LoadedModel(_prepare(obj, notes), "module", str(path.resolve()), digest, None, notes)
    if source.arch is None:
        raise ModelLoadError(
            f"{path} is a state dict or checkpoint; pass --arch module.path:factory that builds the model"
        )
    module = _build_from_arch(source)
    _load_state_dict_into(module, unwrap_state_dict(obj), str(path))
    return LoadedModel(_prepare(module, notes), "state_dict", str(path.resolve()), digest, None, notes)


def _load_pickle(path: Path, digest: str, notes: list[str]) -> LoadedModel:
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelLoadError(f"{path}: unpickling failed ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, torch.nn.Module):
        raise ModelLoadError(f"{path} unpickled to {type(obj).__name__}, not an nn.Module")
    notes.append("loaded a pickled nn.Module (--trust-pickle)")
    return LoadedModel(_prepare(obj, notes), "pickle", str(path.resolve()), digest, None, notes)


def select_output(module: Any, index: int) -> Any:
    """``module`` returning only its output ``index`` (for models that return several tensors)."""
    import torch

    class SelectOutput(torch.nn.Module):
        def __init__(self, inner: Any, index: int) -> None:
            super().__init__()
            self.inner, self.index = inner, index

        def forward(self, x: torch.Tensor) -> Any:
            return self.inner(x)[self.index]

    return SelectOutput(module, index)


def probe_output(
    module: Any, spec: InputSpec, output: OutputSpec, output_index: int | None = None
) -> OutputSpec:
    """Run zeros through the model: checks the input shape and finds the score output.

    A model returning several tensors needs ``output_index`` (which one is the score);
    a 0-d output (no batch dimension) is refused.
    """
    import torch

    try:
        with torch.inference_mode():
            y = module(torch.zeros(spec.shape))
    except Exception as exc:
        raise UsageError(
            f"the model rejects input shape {'x'.join(map(str, spec.shape))} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); pass the right --input-shape"
        ) from exc
    if isinstance(y, (tuple, list)):
        if output_index is None and len(y) > 1:
            raise UsageError(
                f"the model returns {len(y)} outputs; pass --output-index N to say which one is the detector's score"
            )
        index = output_index or 0
        if not 0 <= index < len(y):
            raise UsageError(f"--output-index {index}: the model returns {len(y)} output(s)")
        y = y[index]
    elif output_index not in (None, 0):
        raise UsageError(f"--output-index {output_index}: the model returns a single tensor")
    if not isinstance(y, torch.Tensor):
        raise UsageError(
            f"the model returns {type(y).__name__}, not a tensor of shape (batch, 1) or (batch, 2)"
        )
    if y.dim() == 0 or y.shape[0] != spec.shape[0]:
        raise UsageError(
            f"the model returns shape {tuple(y.shape)}; it must keep the batch dimension: (batch, 1) or (batch, 2)"
        )
    classes = int(np.prod(y.shape[1:])) if y.dim() > 1 else 1
    if classes not in (1, 2):
        raise UsageError(
            f"the model returns {classes} values per image; edgekit handles binary detectors (1 logit or 2 classes)"
        )
    return OutputSpec(
        kind=output.kind, classes=classes, positive_index=min(output.positive_index, classes - 1)
    )
