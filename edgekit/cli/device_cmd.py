"""`edgekit devices` and `edgekit bench`: phones over ADB, or the emulated Pixel 9."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from edgekit.cli._ui import UI, paint, plain, run_guarded
from edgekit.errors import UsageError


def _csv(text: str | None, option: str, cast: type = str) -> tuple[Any, ...] | None:
    if text is None:
        return None
    try:
        return tuple(cast(p.strip()) for p in text.split(",") if p.strip())
    except ValueError:
        kind = "integers" if cast is int else "values"
        raise UsageError(f"{option} {text!r} must be comma-separated {kind}, e.g. 1,4") from None


def devices(
    adb: str | None = typer.Option(None, "--adb", help="adb server HOST:PORT (default 127.0.0.1:5037)."),
    emulator: bool = typer.Option(False, "--emulator", metavar="", help="Show the emulated Pixel 9 instead."),
    device: str | None = typer.Option(
        None,
        "--device",
        help="'emulator' (arm64 under qemu) is the same as --emulator; 'emulator-x86' runs the host's kernels.",
    ),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print JSON."),
) -> None:
    """List attached devices: serial, model, SoC, Android/SDK, ABI, RAM, thermal status."""
    from edgekit.device.bench import EMULATOR, EMULATORS
    from edgekit.device.bench import devices as list_devices

    ui = UI.current()
    if device not in (None, *EMULATORS):
        raise ui.fail(
            UsageError(f"edgekit devices lists every device; --device takes only {' or '.join(EMULATORS)}")
        )
    which: bool | str = device or (EMULATOR if emulator else False)
    infos = run_guarded(ui, lambda: list_devices(adb, which))
    if as_json:
        import json

        ui.out.print_json(json.dumps([i.to_dict() for i in infos]))
        return
    table = Table(title="devices", title_justify="left")
    for col in ("serial", "model", "SoC", "Android", "SDK", "ABI", "RAM MB", "thermal", "profile"):
        table.add_column(col)
    for i in infos:
        name = f"{i.model} ({i.emulation or 'emulated'})" if i.emulated else i.model
        table.add_row(
            i.serial,
            name,
            i.soc,
            i.android,
            str(i.sdk),
            i.abi,
            str(i.ram_mb),
            str(i.thermal_status),
            i.profile or "-",
        )
    ui.out.print(table)


def _cell_table(cells: list[dict[str, Any]]) -> Table:
    emulated = {c.get("emulation") or "emulated on this host" for c in cells if c.get("emulated")}
    title = "edgekit bench" + (
        f" [EMULATED, {'; '.join(sorted(emulated))}: emulator timings and memory, not phone figures]"
        if emulated
        else ""
    )
    table = Table(title=title, title_justify="left")
    for col in (
        "variant",
        "runtime",
        "device",
        "accel",
        "thr",
        "p50 ms",
        "p90 ms",
        "peak RAM MB",
        "budget",
        "parity",
    ):
        table.add_column(
            col, no_wrap=True, justify="right" if "ms" in col or "MB" in col or col == "thr" else "left"
        )
    for c in cells:
        if c["status"] != "ok":
            table.add_row(
                c["variant"],
                c.get("runtime", "litert"),
                c["device"],
                c["accelerator"],
                str(c["threads"]),
                "-",
                "-",
                "-",
                "-",
                paint("error", "red"),
            )
            continue
        acc = (
            c["accelerator"]
            if c["accelerator_used"] == c["accelerator"]
            else f"{c['accelerator']}->{c['accelerator_used']}"
        )
        share = c.get("accelerated_fraction")
        if share is not None and share < 1:  # ops the runtime left elsewhere (cpu: off XNNPACK)
            acc += f" ({'XNNPACK' if c['accelerator'] == 'cpu' else c['accelerator'].upper()} {share:.0%})"

        budget = (
            "-"
            if c["budget_ok"] is None
            else (paint("ok", "green") if c["budget_ok"] else paint("over", "red"))
        )
        table.add_row(
            c["variant"], c.get("runtime", "litert"), c["device"], acc, str(c["threads"]), f"{c['latency']['p50']:.2f}",
            f"{c['latency']['p90']:.2f}",
            f"{c['peak_ram_mb']}", budget, paint("pass", "green") if c["parity_ok"] else paint("FAIL", "red"),
        )  # fmt: skip
    return table


def bench(
    target: Path = typer.Argument(..., help="An export folder (manifest.json) or any .tflite file."),
    device: str | None = typer.Option(
        None, "--device", "-d", help="Serial, profile (pixel9), several a,b, all, or emulator."
    ),
    adb: str | None = typer.Option(None, "--adb", help="adb server HOST:PORT (phones on another machine)."),
    accelerator: str = typer.Option("cpu", "--accelerator", help="cpu, gpu, npu (comma-separated)."),
    threads: str | None = typer.Option(
        None, "--threads", help="CPU threads to sweep, e.g. 1,4 (default: the profile's)."
    ),
    runs: int = typer.Option(50, "--runs", help="Timed runs per cell."),
    warmup: int = typer.Option(10, "--warmup", help="Warm-up runs per cell."),
    parity_samples: int | None = typer.Option(
        None,
        "--parity-samples",
        help="Pinned parity inputs run on the device (default: all the export pinned).",
    ),
    variants: str | None = typer.Option(None, "--variants", help="Only these variants (comma-separated)."),
    resume: bool = typer.Option(
        False, "--resume", metavar="", help="Skip cells already finished in the output folder."
    ),
    apk: Path | None = typer.Option(None, "--apk", help="Benchmark APK to install when missing or outdated."),
    cooldown: float = typer.Option(
        0.0, "--cooldown", help="Wait up to this many seconds for thermal status 0 before each cell."
    ),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds one app run may take."),
    gpu_precision: str = typer.Option("fp32", "--gpu-precision", help="fp32 (parity runs) or fp16."),
    profile: bool = typer.Option(
        False, "--profile", metavar="", help="Per-op profile of each cell (ONNX Runtime, ExecuTorch ETDump)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Results folder (default: TARGET/bench, or ./bench)."
    ),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the cells as JSON."),
    strict: bool = typer.Option(
        False, "--strict", metavar="", help="Exit 1 when a cell fails parity or the RAM budget."
    ),
) -> None:
    """Benchmark variants on phones (or the emulated Pixel 9): latency, peak RAM, on-device parity."""
    from edgekit.device.bench import BenchSpec, cell_json
    from edgekit.device.bench import bench as run_bench

    ui = UI.current()

    def build() -> BenchSpec:
        folder = out or (target / "bench" if target.is_dir() else Path("bench"))
        return BenchSpec(
            target=target, out_dir=folder, device=device, adb=adb, accelerators=_csv(accelerator, "--accelerator") or ("cpu",),
            threads=_csv(threads, "--threads", int), runs=runs, warmup=warmup, parity_samples=parity_samples,
            variants=_csv(variants, "--variants"), resume=resume, apk=apk, cooldown=cooldown, timeout=timeout,
            gpu_precision=gpu_precision, profile=profile,
        )  # fmt: skip

    spec = run_guarded(ui, build)
    with ui.err.status("benchmarking") as status:

        def progress(message: str) -> None:
            status.update(plain(message))
            ui.err.print(plain(message), highlight=False)

        report = run_guarded(ui, lambda: run_bench(spec, progress))
    if as_json:
        ui.out.print_json(cell_json(report.cells))
    else:
        ui.err.print(_cell_table(report.cells))
        ui.err.print(
            f"results: {spec.out_dir / 'bench.jsonl'}"
            + (f" ({report.skipped} finished cells skipped)" if report.skipped else "")
        )
    for why in report.gone.values():
        ui.err.print(Text.assemble((why, "red"), f" ({report.pending} cell(s) not run)"), highlight=False)
    for c in report.cells:
        if c["status"] != "ok":
            ui.err.print(f"{c['variant']} on {c['device']}: {c['error']}", style="red", highlight=False)
        elif c.get("fallback_reason"):
            ui.err.print(
                f"{c['variant']}: asked for {c['accelerator']}, ran on {c['accelerator_used']}: {c['fallback_reason']}",
                style="yellow",
                highlight=False,
            )
    if not report.ok or (strict and not report.all_within):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command("devices")(devices)
    app.command("bench")(bench)
