"""The phone's CPU on the host: the arm64 environment, parity on its kernels, the arm64 emulated Pixel 9.

Tests marked ``arm64`` run the real aarch64 builds of ai-edge-litert and onnxruntime under
qemu-aarch64 (``make arm64`` builds them; CI must have them, a developer without root or qemu
skips them with the reason). The rest check the pieces that need no emulator.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.arm64 import Arm64EnvError, Arm64Worker, find_env, open_env
from edgekit.arm64.build import cpuinfo_text, debian_mirror, debian_release
from edgekit.arm64.worker import hwcaps
from edgekit.cli import app
from tests.conftest import require_system_tool


@pytest.fixture(scope="module")
def arm64_env() -> Any:
    env, why = find_env()
    require_system_tool(None if env else why)
    return env


# -- no emulator needed ----------------------------------------------------------------------


def test_hwcap_words_decode_to_named_features() -> None:
    hw = (1 << 1) | (1 << 20) | (1 << 22)  # asimd, asimddp, sve
    hw2 = (1 << 1) | (1 << 13) | (1 << 14)  # sve2, i8mm, bf16
    auxv = struct.pack("<QQQQQQ", 16, hw, 26, hw2, 0, 0)
    caps = hwcaps(auxv)
    assert caps["asimddp"] and caps["sve"] and caps["sve2"] and caps["i8mm"] and caps["bf16"]
    assert not caps["sme"] and not caps["asimdfhm"]


def test_the_sysroot_cpuinfo_is_tensor_g4s_eight_cores() -> None:
    text = cpuinfo_text()
    assert text.count("processor\t:") == 8
    parts = [line.split(":")[1].strip() for line in text.splitlines() if line.startswith("CPU part")]
    assert parts == ["0xd80"] * 4 + ["0xd81"] * 3 + ["0xd82"]  # A520 x4, A720 x3, X4
    assert all(f in text for f in (" asimddp ", " i8mm ", " bf16 ", " sve2 "))


def test_the_debian_mirror_is_read_from_the_hosts_own_apt_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGEKIT_DEBIAN_MIRROR", raising=False)
    deb822 = ("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
              "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
              "Suites: bookworm-security\n")  # fmt: skip
    assert debian_mirror("bookworm", {"debian.sources": deb822}) == "http://mirror.example/debian"
    one_line = "# comment\ndeb [arch=amd64] http://other.example/debian bookworm main\n"
    assert debian_mirror("bookworm", {"sources.list": one_line}) == "http://other.example/debian"
    with pytest.raises(Arm64EnvError, match="EDGEKIT_DEBIAN_MIRROR"):
        debian_mirror("trixie", {"debian.sources": deb822})
    assert debian_release('ID=debian\nVERSION_CODENAME="bookworm"\n') == "bookworm"
    with pytest.raises(Arm64EnvError, match="not Debian"):
        debian_release("ID=ubuntu\nVERSION_CODENAME=noble\n")


@pytest.mark.parametrize(
    "content",
    [
        "[" * 5000,  # deeply nested: RecursionError must become the one-line error
        "{not json",
        json.dumps({"python": "../../../bin/sh"}),  # a name that would leave the sysroot
        json.dumps({"python": "python3.11"}),  # a record without the interpreter it names
        json.dumps(["python3.11"]),
    ],
)
def test_a_hand_edited_environment_record_is_refused_in_one_line(tmp_path: Path, content: str) -> None:
    (tmp_path / "env.json").write_text(content)
    with pytest.raises(Arm64EnvError) as err:
        open_env(tmp_path)
    assert "make arm64" in str(err.value) and "\n" not in str(err.value)
    env, why = find_env(tmp_path)
    assert env is None and why == str(err.value)


def test_an_interpreter_linked_out_of_the_sysroot_is_refused(tmp_path: Path) -> None:
    (tmp_path / "env.json").write_text(json.dumps({"python": "python3.11"}))
    bindir = tmp_path / "sysroot" / "usr" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "python3.11").symlink_to("/bin/sh")
    with pytest.raises(Arm64EnvError, match="missing"):
        open_env(tmp_path)


# -- the real aarch64 runtimes under qemu ---------------------------------------------------------


@pytest.mark.arm64
def test_the_runtimes_see_tensor_g4s_features(arm64_env: Any) -> None:
    from importlib import metadata

    with Arm64Worker(arm64_env) as worker:
        seen = worker.features()
    assert seen["machine"] == "aarch64"
    caps = seen["features"]
    assert all(caps[f] for f in ("asimd", "asimddp", "i8mm", "bf16", "sve", "sve2")), caps
    assert not caps["sme"] and seen["sve_vector_bits"] == 128
    for name in ("numpy", "ai-edge-litert", "onnxruntime"):  # the host's versions, built for aarch64
        assert seen["versions"][name] == metadata.version(name)


@pytest.mark.arm64
def test_the_worker_runs_both_runtimes_and_survives_a_bad_file(arm64_env: Any, tiny_export: Path) -> None:
    from edgekit.manifest import load_manifest, parity_arrays, verified_file
    from edgekit.runners import open_runner
    from edgekit.runners.base import run_batch

    manifest = load_manifest(tiny_export)
    x, _ = parity_arrays(tiny_export, manifest)
    with Arm64Worker(arm64_env) as worker:
        for v in manifest.variants:
            path = verified_file(tiny_export, v)
            on_arm = worker.run(v.format, path, x)
            on_host = run_batch(open_runner(v.format, path), x)
            assert on_arm.shape == on_host.shape
            if v.precision == "fp32":
                np.testing.assert_allclose(on_arm, on_host, rtol=1e-4, atol=1e-4)
        bad = path.with_name("cut.tflite")
        bad.write_bytes(path.read_bytes()[:100])
        with pytest.raises(ValueError):
            worker.run("tflite", bad, x)
        assert worker.run("tflite", path, x[:2]).shape[0] == 2  # the worker is still alive


@pytest.mark.arm64
def test_export_judges_every_variant_on_the_arm64_kernels(arm64_env: Any, tmp_path: Path) -> None:
    from edgekit.manifest import load_manifest
    from tests.conftest import TINY_ARCH, TINY_SHAPE, write_images

    image_dir = write_images(tmp_path / "images", 60)
    out = tmp_path / "e"
    result = CliRunner().invoke(app, [
        "export", "--arch", TINY_ARCH, "--input-shape", TINY_SHAPE, "--int8", "--onnx", "--calib", str(image_dir),
        "--calib-samples", "16", "--parity-samples", "40", "--arm64", "on", "-o", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "parity judged on the phone's kernels, emulated arm64 (qemu" in result.output
    manifest = load_manifest(out)
    assert manifest.target and "i8mm" in manifest.target["arm64"]["features"]
    by_name = {v.name: v for v in manifest.variants}
    for name in ("tflite_int8", "onnx_int8"):
        v = by_name[name]
        assert v.judged_on == "arm64" and v.arm64 and v.arm64["samples"] == 40 == v.arm64["of"], name
        assert v.parity == v.arm64["parity"] and v.parity_host is not None
        assert v.arm64["runtime"].startswith("emulated arm64 (qemu, max")
    fp32 = by_name["tflite_fp32"]
    assert fp32.judged_on == "host+arm64" and fp32.arm64 and fp32.arm64["samples"] == 32
    assert fp32.arm64["vs_host"]["decisions_differ"] == 0 and fp32.arm64["vs_host"]["max_abs_diff"] < 1e-4


@pytest.mark.arm64
def test_bench_on_the_arm64_emulated_pixel9(arm64_env: Any, tiny_export: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["devices", "--device", "emulator", "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)[0]["emulation"].startswith("emulated arm64 (qemu")
    out = tmp_path / "b"
    result = runner.invoke(app, ["bench", str(tiny_export), "--device", "emulator", "--runs", "2", "--warmup", "0",
                                 "--threads", "1", "--variants", "tflite_int8", "--profile", "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())  # the table title wraps at the terminal's width
    assert "EMULATED, emulated arm64 (qemu" in shown and "not phone figures" in shown
    cell = json.loads((out / "bench.jsonl").read_text().splitlines()[0])
    assert cell["status"] == "ok" and cell["parity_ok"], cell
    assert cell["emulation"].startswith("emulated arm64 (qemu, max")
    assert cell["environment"]["result_device"]["emulation"] == cell["emulation"]
    memory = cell[
        "memory"
    ]  # as the app: the load's baseline after inspection, a sampled peak during the runs
    assert {"before_load", "after_inspect", "after_load", "peak_sampled", "after_runs"} <= set(memory)
    assert memory["peak_sampled"]["vm_rss_kb"] >= memory["after_load"]["vm_rss_kb"] > 0
    delta = memory["after_load"]["vm_rss_kb"] - memory["after_inspect"]["vm_rss_kb"]
    assert cell["init_memory_delta_kb"]["vm_rss_kb"] == delta
    # (the recorded mean is rounded to the microsecond)
    assert cell["first_vs_warm_mean"] == pytest.approx(
        cell["first_inference_ms"] / cell["latency"]["mean"], rel=2e-3
    )
    # the arm64 LiteRT's graph after delegation: every op of the INT8 model on XNNPACK
    assert cell["placement"]["source"] == "tflite_graph" and cell["accelerated_fraction"] == 1.0
    assert "no per-op profiler" in cell["profile_note"]


def test_the_arm64_emulator_without_its_environment_says_how_to_build_it(
    tiny_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGEKIT_ARM64_ENV", str(tmp_path / "none"))
    result = CliRunner().invoke(
        app, ["bench", str(tiny_export), "--device", "emulator", "-o", str(tmp_path / "b")]
    )
    assert result.exit_code == 2
    assert "make arm64" in result.output and "emulator-x86" in result.output
    assert not (tmp_path / "b" / "bench.jsonl").exists()


def test_export_without_the_environment_says_whose_kernels_judged(
    image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import TINY_ARCH, TINY_SHAPE

    monkeypatch.setenv("EDGEKIT_ARM64_ENV", str(tmp_path / "none"))
    base = ["export", "--arch", TINY_ARCH, "--input-shape", TINY_SHAPE, "--parity-samples", "8"]
    refused = CliRunner().invoke(app, [*base, "--arm64", "on", "-o", str(tmp_path / "on")])
    assert refused.exit_code == 2 and "make arm64" in refused.output and not (tmp_path / "on").exists()
    auto = CliRunner().invoke(app, [*base, "-o", str(tmp_path / "auto")])
    assert auto.exit_code == 0, auto.output
    assert "arm64: no arm64 environment" in auto.output and "not the phone's" in auto.output
    manifest = json.loads((tmp_path / "auto" / "manifest.json").read_text())
    assert manifest["target"]["arm64"] is None and manifest["variants"][0]["judged_on"] == "host"


def test_the_verdict_is_arm64s_and_a_disagreement_is_one_line() -> None:
    """The issue's case: x86 kernels that saturate flip 12 of 256 decisions, ARM's none."""
    from edgekit.arm64.check import disagreement, verdict
    from edgekit.parity import compare
    from edgekit.spec import DEFAULT_TOLERANCES, OutputSpec

    rng = np.random.default_rng(0)
    ref = rng.normal(0, 3, (256, 1)).astype(np.float32)
    close = ref + rng.normal(0, 0.05, ref.shape).astype(np.float32)
    broken = close.copy()
    near = np.argsort(np.abs(ref[:, 0]))[:12]
    broken[near] = -ref[near]  # the 12 samples nearest the threshold flip on the host
    tol, spec = DEFAULT_TOLERANCES["int8"], OutputSpec()
    host = compare(ref, broken, spec, tol)
    arm = compare(ref, close, spec, tol)
    record = {"samples": 256, "parity": arm.to_dict(),
              "vs_host": {"decisions_differ": 12, "bit_identical": 0, "max_abs_diff": 1.0}}  # fmt: skip
    judged, where = verdict(host, record)
    assert where == "arm64" and judged.passed and not host.passed
    line = disagreement("onnx_int8", host.to_dict(), record)
    assert line is not None and "\n" not in line
    assert "host 12/256 flips" in line and "arm64 0/256 flips" in line and "the verdict is arm64's" in line
    same = {**record, "vs_host": {"decisions_differ": 0, "bit_identical": 256, "max_abs_diff": 0.0}}
    assert disagreement("onnx_int8", arm.to_dict(), same) is None  # agreement says nothing
    subset = {"samples": 32, "parity": compare(ref[:32], broken[:32], spec, tol).to_dict(),
              "vs_host": {"decisions_differ": 0, "bit_identical": 0, "max_abs_diff": 0.1}}  # fmt: skip
    judged, where = verdict(arm, subset)  # a float variant: host parity on all, arm64 on the first 32
    assert where == "host+arm64" and judged.passed == (arm.passed and subset["parity"]["passed"])


def test_a_worker_that_dies_fails_that_variants_check_not_the_export(tmp_path: Path) -> None:
    from edgekit.arm64.check import check, verdict
    from edgekit.parity import compare
    from edgekit.spec import DEFAULT_TOLERANCES, OutputSpec

    class Dead:
        env = type("E", (), {"label": "emulated arm64 (qemu, test)"})()

        def run(self, *_a: object) -> None:
            raise Arm64EnvError("the arm64 worker died: Illegal instruction")

    x = np.zeros((4, 3, 8, 8), np.float32)
    ref = np.linspace(-2, 2, 4, dtype=np.float32).reshape(4, 1)
    tol = DEFAULT_TOLERANCES["int8"]
    record = check(Dead(), "tflite", tmp_path / "m.tflite", "int8", x, ref, ref, OutputSpec(), tol, 0.5)
    assert record["error"] == "the arm64 worker died: Illegal instruction"
    judged, where = verdict(compare(ref, ref, OutputSpec(), tol), record)
    assert where == "host" and not judged.passed
    assert judged.reasons[-1] == "arm64: the arm64 worker died: Illegal instruction"


def test_eval_says_when_this_hosts_onnx_int8_scores_are_not_the_phones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    import edgekit.exporters.onnx as onnx_exporter
    from edgekit.evaluation.report import _host_kernel_notes

    meta = SimpleNamespace(variants=["pytorch_fp32", "onnx_int8", "tflite_int8"],
                           format={"onnx_int8": "onnx", "tflite_int8": "tflite"},
                           precision={"onnx_int8": "int8", "tflite_int8": "int8"})  # fmt: skip
    monkeypatch.setattr(onnx_exporter, "saturating_host", lambda: "this x86 host has no VNNI")
    (note,) = _host_kernel_notes(meta)  # type: ignore[arg-type]
    assert note.startswith("onnx_int8 scored with this host's onnxruntime kernels: this x86 host has no VNNI")
    monkeypatch.setattr(onnx_exporter, "saturating_host", lambda: None)
    assert _host_kernel_notes(meta) == []  # type: ignore[arg-type]
