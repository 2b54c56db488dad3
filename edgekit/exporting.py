"""The export job behind `edgekit export` and `edgekit.export()`.

load -> read data -> convert every variant -> parity against PyTorch -> manifest.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit import __version__
from edgekit._io import atomic_write_bytes, sha256_bytes, staged_folder
from edgekit.data.labels import label_of
from edgekit.data.tensors import DataSet, find_files, load_dataset, split_files
from edgekit.errors import (
    DataError,
    EdgekitError,
    ExportError,
    ModelLoadError,
    OutputError,
    UnsupportedOpError,
    UsageError,
)
from edgekit.manifest import PARITY_INPUTS, PARITY_REFERENCE, Manifest, VariantRecord
from edgekit.modelmeta import resolve_preprocess
from edgekit.parity import auc_or_none, compare, fake_scores, reference_warnings
from edgekit.runners import open_runner
from edgekit.runners.base import Runner, run_batch
from edgekit.spec import ExportSpec, InputSpec, Layout, OutputSpec, Preprocess
from edgekit.validate import contained

if TYPE_CHECKING:
    from edgekit.exporters.preflight import GraphFacts
    from edgekit.exporters.registry import ExportContext, VariantInfo
    from edgekit.loading import LoadedModel

#: progress(step description, steps done, steps total)
ProgressFn = Callable[[str, int, int], None]

DEFAULT_INPUT_SHAPE = (1, 3, 224, 224)
_TOOLS = ("torch", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "onnx", "onnxruntime", "numpy")


def tool_versions() -> dict[str, str]:
    """Installed versions of the converters and runtimes, for the manifest."""
    out = {"edgekit": __version__, "python": platform.python_version()}
    for name in _TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _resolve_input(
    spec: ExportSpec, recorded: tuple[int, ...] | None, stored: dict[str, Any] | None
) -> tuple[InputSpec, Preprocess, str]:
    if spec.input_shape and recorded and tuple(spec.input_shape) != recorded:
        raise UsageError(
            f"--input-shape {'x'.join(map(str, spec.input_shape))} does not match the "
            f"{'x'.join(map(str, recorded))} recorded in the .pt2; drop --input-shape"
        )
    shape = tuple(spec.input_shape or recorded or DEFAULT_INPUT_SHAPE)
    torch_spec = InputSpec(shape=shape, layout=Layout.NCHW)
    pre, source = resolve_preprocess(shape[2], shape[3], stored, spec.mean, spec.std, spec.resize)
    if spec.face_crop is not None:
        from dataclasses import replace

        pre = replace(pre, face_crop=spec.face_crop)
    return torch_spec, pre, source


def _read_data(
    spec: ExportSpec, inp: InputSpec, pre: Preprocess
) -> tuple[DataSet | None, DataSet, dict[str, Any]]:
    calib: DataSet | None = None
    parity: DataSet | None = None
    info: dict[str, Any] = {}
    if spec.calib_dir is not None:
        root = Path(spec.calib_dir)
        files = find_files(root)
        if not files:
            raise DataError(
                f"no images (jpg/png/webp/bmp) or .npy/.npz files under {root}; point --calib at your images"
            )
        held = 0 if spec.parity_dir else spec.parity_samples
        labels = [label_of(f, root) for f in files]
        calib_files, parity_files = split_files(files, spec.calib_samples, held, spec.seed, labels)
        calib = load_dataset(calib_files, root, pre, inp)
        if len(calib) == 0:
            raise DataError(
                f"none of the {len(calib_files)} calibration files under {root} could be used "
                f"(first: {calib.skipped[0][1] if calib.skipped else 'unknown'}); check sizes and formats"
            )
        if parity_files:
            parity = load_dataset(parity_files, root, pre, inp)
        info["calibration"] = {
            "dir": str(root.resolve()),
            "files_found": len(files),
            "samples": len(calib),
            "seed": spec.seed,
            "skipped": len(calib.skipped),
            "skipped_files": [list(s) for s in calib.skipped[:20]],
            "class_balance": calib.class_balance(),
        }
    if spec.parity_dir is not None:
        root = Path(spec.parity_dir)
        files = find_files(root)
        chosen, _ = split_files(files, spec.parity_samples, 0, spec.seed, [label_of(f, root) for f in files])
        parity = load_dataset(chosen, root, pre, inp)
        if len(parity) == 0:
            raise DataError(f"no usable parity samples under {root}; pass a folder of images or .npy files")
        source = f"--parity-data {root}"
    elif parity is not None and len(parity):
        source = "held out from --calib (never used for calibration)"
    else:
        rng = np.random.default_rng(spec.seed)
        n = min(spec.parity_samples, 16)
        parity = DataSet(
            rng.standard_normal((n, *inp.sample_shape)).astype(np.float32),
            tuple(f"random[{i}]" for i in range(n)),
            (None,) * n,
        )
        source = "random normal inputs (no --calib or --parity-data given): parity on real images is stronger"
    info["parity_data"] = {
        "source": source,
        "samples": len(parity),
        "skipped": len(parity.skipped),
        "class_balance": parity.class_balance(),
        "names": list(parity.names),
    }
    return calib, parity, info


def _variant_input(runner: Runner, layout: Layout) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": runner.input_name,
        "shape": list(runner.input_shape),
        "layout": layout.value,
    }
    info["dtype"] = runner.input_dtype
    quant = runner.input_quantization
    if quant:
        info["quantization"] = quant
    return info


def export(spec: ExportSpec, progress: ProgressFn | None = None) -> Manifest:
    """Export every variant in ``spec``, check each against PyTorch, and write the manifest."""
    from edgekit.exporters import get_variant

    report: ProgressFn = progress or (lambda _msg, _done, _total: None)
    infos = [get_variant(v) for v in spec.variants]
    needs_calib = [v.name for v in infos if v.needs_calibration]
    if needs_calib and spec.calib_dir is None:
        raise UsageError(
            f"{', '.join(needs_calib)} need calibration images: pass --calib DIR (your own data)"
        )
    if any(v.name == "tflite_recipe" for v in infos):
        if spec.recipe is None:
            raise UsageError("the recipe variant needs --recipe FILE.json")
        from edgekit.exporters.aeq import read_recipe

        read_recipe(spec.recipe)  # a bad file is refused now, not after the float conversion
    # the folder is locked from the start (a second run fails at once) and everything is written
    # into a staging folder that replaces it at the end (see staged_folder)
    with staged_folder(spec.out_dir, _previous_export_files) as out_dir:
        return _export_into(out_dir, spec, infos, needs_calib, report)


def _export_into(
    out_dir: Path, spec: ExportSpec, infos: list[VariantInfo], needs_calib: list[str], report: ProgressFn
) -> Manifest:
    from edgekit.loading import load_model, probe_output, select_output
    from edgekit.runners.torch import TorchRunner

    total = len(infos) + 3
    report("loading model", 0, total)
    loaded = load_model(spec.source)
    inp, pre, pre_source = _resolve_input(spec, loaded.recorded_input_shape, loaded.preprocess)
    output = probe_output(loaded.module, inp, spec.output, spec.output_index)
    module = loaded.module if spec.output_index is None else select_output(loaded.module, spec.output_index)
    report("reading the model's graph", 0, total)
    facts = _read_graph(module, inp, {i.format for i in infos})

    report("reading calibration and parity data", 1, total)
    calib, parity, data_info = _read_data(spec, inp, pre)
    if needs_calib and (calib is None or len(calib) == 0):
        raise DataError("no calibration samples left after holding out parity samples; add more images")
    report("running the PyTorch reference", 2, total)
    reference = run_batch(TorchRunner(module, inp.shape), parity.inputs)

    worker, target = _open_arm64(spec.arm64)
    try:
        records = _export_variants(out_dir, spec, infos, module, inp, calib, parity, reference, output, worker,
                                   report)  # fmt: skip
    finally:
        if worker is not None:
            worker.close()
    report("done", total, total)
    manifest = _manifest(spec, loaded, inp, pre, output, data_info, reference, parity, records)
    warnings = reference_warnings(reference, output, parity.labels, spec.threshold, pre_source)
    manifest = replace(
        manifest,
        preprocess_source=pre_source,
        reference={**manifest.reference, "warnings": warnings},
        target=target,
        binary=_binary_record(facts, records, out_dir),
    )
    manifest.save(out_dir)
    return manifest


def _binary_record(facts: GraphFacts, records: list[VariantRecord], out_dir: Path) -> dict[str, Any] | None:
    """The binary layers, and how many of them the INT8 TFLite file holds exactly (+-127)."""
    from edgekit.exporters.preflight import binary_weights_in_int8

    record = facts.binary_dict()
    if record is None:
        return None
    int8 = next((r for r in records if r.name == "tflite_int8" and r.status == "ok" and r.file), None)
    if int8 is not None:
        exact = binary_weights_in_int8(contained(out_dir, int8.file, "variant file").read_bytes())
        record["int8_exact"] = (
            f"{min(exact, len(facts.binary))}/{len(facts.binary)} binary layers held exactly "
            "(+-127) by tflite_int8"
        )
    return record


def _read_graph(module: Any, inp: InputSpec, formats: set[str]) -> GraphFacts:
    """The graph's facts before any conversion; an op no requested converter takes stops the
    export here, in seconds, naming the op and its source line (see exporters/preflight.py)."""
    import torch

    from edgekit.exporters.preflight import inspect

    facts = inspect(module, torch.zeros(inp.shape), formats)
    if facts.blockers:
        raise UnsupportedOpError(facts.blockers[0].line())
    return facts


def _export_variants(
    out_dir: Path,
    spec: ExportSpec,
    infos: list[VariantInfo],
    module: Any,
    inp: InputSpec,
    calib: DataSet | None,
    parity: DataSet,
    reference: np.ndarray,
    output: OutputSpec,
    worker: Any,
    report: ProgressFn,
) -> list[VariantRecord]:
    from edgekit.exporters import ExportContext

    ctx = ExportContext(
        target=worker,
        module=module,
        input_spec=InputSpec(shape=_layout_shape(inp.shape, spec.layout), layout=spec.layout),
        calibration=None if calib is None else calib.inputs,
        recipe=spec.recipe,
        int8_target=spec.tolerances.get("int8") if spec.int8_repair else None,
        int8_effort=spec.int8_effort,
        threshold=spec.threshold,
        output=output,
    )
    atomic_write_bytes(out_dir / PARITY_INPUTS, _npy_bytes(parity.inputs))
    atomic_write_bytes(out_dir / PARITY_REFERENCE, _npy_bytes(reference))
    records: list[VariantRecord] = []
    total = len(infos) + 3
    for k, info in enumerate(infos):
        step = f"exporting {info.name}" + (" (parity on host and arm64)" if worker else "")
        report(step, 3 + k, total)
        ctx.say = lambda message, step=step, k=k: report(f"{step}: {message}", 3 + k, total)  # type: ignore[misc]
        records.append(_export_one(info, ctx, spec, out_dir, parity, reference, output))
    return records


def _open_arm64(mode: str) -> tuple[Any, dict[str, Any]]:
    """The arm64 worker parity runs in (None when off or not built), and the manifest's ``target``."""
    if mode == "off":
        return None, {"arm64": None, "why": "--arm64 off: parity on the host's kernels only"}
    from edgekit.arm64 import Arm64EnvError, Arm64Worker, find_env

    env, why = find_env()
    if env is None:
        if mode == "on":
            raise UsageError(f"--arm64 on: {why}")
        return None, {"arm64": None, "why": f"{why}; parity is the host's kernels' only, not the phone's"}
    worker = Arm64Worker(env)
    try:
        seen = worker.features()
    except Arm64EnvError as exc:
        worker.close()
        if mode == "on":
            raise UsageError(f"--arm64 on: {exc}") from None
        return None, {"arm64": None, "why": f"{exc}; parity is the host's kernels' only"}
    features = [k for k, v in (seen.get("features") or {}).items() if v]
    return worker, {"arm64": {"runtime": env.label, "features": features,
                              "sve_vector_bits": seen.get("sve_vector_bits"), "versions": seen.get("versions")}}  # fmt: skip


def _previous_export_files(out_dir: Path) -> set[str]:
    """What an earlier export into ``out_dir`` wrote (its manifest, parity files and variant files)."""
    from edgekit.manifest import MANIFEST_NAME, load_manifest

    owned = {MANIFEST_NAME, PARITY_INPUTS, PARITY_REFERENCE}
    try:
        previous = load_manifest(out_dir)
    except EdgekitError:  # none, or unreadable: only the fixed names are known to be ours
        return owned if (out_dir / MANIFEST_NAME).exists() else set()
    return owned | {v.file for v in previous.variants if v.file}


def _manifest(
    spec: ExportSpec,
    loaded: LoadedModel,
    inp: InputSpec,
    pre: Preprocess,
    output: OutputSpec,
    data_info: dict[str, Any],
    reference: np.ndarray,
    parity: DataSet,
    records: list[VariantRecord],
) -> Manifest:
    return Manifest(
        name=spec.name,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        source={
            "path": loaded.path,
            "sha256": loaded.sha256,
            "kind": loaded.kind,
            "arch": spec.source.arch,
            "arch_kwargs": spec.source.arch_kwargs,
            "notes": loaded.notes,
        },
        input={
            "shape": list(inp.shape),
            "dtype": "float32",
            "layout": "nchw",
            "export_layout": spec.layout.value,
        },
        output={
            "kind": output.kind.value,
            "classes": output.classes,
            "positive_index": output.positive_index,
            **({"index": spec.output_index} if spec.output_index is not None else {}),
        },
        preprocess=pre.to_dict(),
        threshold=spec.threshold,
        calibration=data_info.get("calibration"),
        parity_data={
            **data_info["parity_data"],
            "inputs_file": PARITY_INPUTS,
            "reference_file": PARITY_REFERENCE,
        },
        reference={"backend": "torch", "auc": auc_or_none(fake_scores(reference, output), parity.labels)},
        variants=tuple(records),
        tools=tool_versions(),
    )


def _layout_shape(shape: tuple[int, ...], layout: Layout) -> tuple[int, ...]:
    return shape if layout is Layout.NCHW else (shape[0], shape[2], shape[3], shape[1])


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _export_one(
    info: VariantInfo,
    ctx: ExportContext,
    spec: ExportSpec,
    out_dir: Path,
    parity: DataSet,
    reference: np.ndarray,
    output: OutputSpec,
) -> VariantRecord:
    fname = info.filename(spec.name)
    start = time.perf_counter()
    try:
        data = info.build(ctx)
    except UnsupportedOpError:
        raise
    except EdgekitError as exc:
        return VariantRecord(info.name, None, info.format, info.precision, "failed", error=str(exc))
    seconds = time.perf_counter() - start
    path = contained(out_dir, fname, "variant file", error=OutputError)
    atomic_write_bytes(path, data)
    layout = spec.layout if info.format == "tflite" else Layout.NCHW
    inputs = parity.inputs if layout is Layout.NCHW else parity.inputs.transpose(0, 2, 3, 1).copy()
    try:
        runner = open_runner(info.format, path)
        outputs = run_batch(runner, inputs)
    except (ModelLoadError, ExportError) as exc:  # built, but its runtime cannot run it: no file is kept
        path.unlink(missing_ok=True)
        return VariantRecord(info.name, None, info.format, info.precision, "failed",
                             error=f"converted, but the runtime cannot run it: {exc}")  # fmt: skip
    tol = spec.tolerances.get(info.precision, spec.tolerances["int8"])
    host_result = compare(reference, outputs, output, tol, spec.threshold)
    arm64 = None
    if ctx.target is not None:
        from edgekit.arm64.check import check

        arm64 = check(ctx.target, info.format, path, info.precision, inputs, reference, outputs, output, tol,
                      spec.threshold)  # fmt: skip
    from edgekit.arm64.check import verdict

    result, judged_on = verdict(host_result, arm64)
    # ExecuTorch's runtime does not expose its plan: the exporter counted the lowered graph
    report = ctx.cache.get(f"delegation:{info.name}") or runner.delegation()
    delegation = report.to_dict() if report is not None else None
    sparsity = None
    if info.format == "tflite":
        from edgekit.exporters.sparsity import lint
        from edgekit.exporters.tflite_graph import TFLiteGraph

        sparsity = lint(TFLiteGraph(data)).to_dict()
        sparsity["applied"] = list(ctx.cache.get(f"notes:{info.name}", []))
    return VariantRecord(
        name=info.name,
        file=fname,
        format=info.format,
        precision=info.precision,
        status="ok",
        size_bytes=len(data),
        sha256=sha256_bytes(data),
        export_seconds=round(seconds, 3),
        input=_variant_input(runner, layout),
        output={"shape": [int(d) for d in outputs.shape[1:]]},
        parity=result.to_dict(),
        auc=auc_or_none(fake_scores(outputs, output), parity.labels),
        delegation=delegation,
        sparsity=sparsity,
        repair=ctx.cache.get(f"repair:{info.name}"),
        parity_host=host_result.to_dict(),
        arm64=arm64,
        judged_on=judged_on,
    )
