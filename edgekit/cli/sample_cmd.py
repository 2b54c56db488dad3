"""`edgekit sample`: the bundled detector and data, so every command can be tried at once."""

from __future__ import annotations

from pathlib import Path

import typer

from edgekit.cli._ui import UI, run_guarded


def sample(
    out: Path = typer.Option(Path("sample"), "--out", "-o", help="Folder to write the model and data to."),
    count: int = typer.Option(500, "--count", help="Number of images (half real, half fake)."),
    videos: bool = typer.Option(
        False,
        "--videos",
        metavar="",
        help="Also write OUT/videos: FF++-shaped mp4 clips, real/ and fake/<method>/ at 1:4, whole frames.",
    ),
    originals: int = typer.Option(10, "--originals", help="With --videos: real clips (4 fakes each)."),
    layout: str = typer.Option(
        "folders", "--layout", help="With --videos: folders (real/, fake/), ff++ or celebdf (as they ship)."
    ),
) -> None:
    """Write the bundled sample detector (.pt2) and a labelled real/fake image set."""
    from edgekit.sample.bundle import write_sample
    from edgekit.sample.videos import write_videos

    ui = UI.current()
    with ui.err.status("writing the sample detector and data"):
        files = run_guarded(ui, lambda: write_sample(out, count))
    if videos:
        with ui.err.status("encoding the video sample"):
            clips = run_guarded(ui, lambda: write_videos(out / "videos", originals, layout=layout))
        ui.err.print(
            f"videos {clips.folder}  ({clips.real} real, {sum(clips.fake.values())} fake: "
            f"{', '.join(f'{k} {v}' for k, v in clips.fake.items())}; {clips.frames} frames each)\n"
            f"       whole frames: evaluate with --face-crop, e.g. edgekit eval {out / 'export'} "
            f"--data {clips.folder} --face-crop --threshold eer",
            highlight=False,
        )
    ui.err.print(
        f"model  {files.model}\ndata   {files.data}  ({files.real} real, {files.fake} fake)\n"
        f"next:  edgekit export {files.model} --fp16 --int8 --onnx --calib {files.data} -o {out / 'export'}\n"
        "       (the .pt2 carries its preprocessing: no --mean/--std needed)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command("sample")(sample)
