"""The typer application: it imports every command module and registers it; no command imports it."""

from __future__ import annotations

import sys

import typer

from edgekit import __version__
from edgekit.cli import compress_cmd, device_cmd, eval_cmd, export_cmd, sample_cmd
from edgekit.cli._ui import UI

app = typer.Typer(
    name="edgekit",
    help="Take a trained PyTorch detector to an Android phone and prove, with numbers, that it still works there.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        UI.current().out.print(f"edgekit {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", metavar="", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """edgekit: export, evaluate and benchmark binary detectors for Android."""


for _command in (export_cmd, compress_cmd, sample_cmd, device_cmd, eval_cmd):
    _command.register(app)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="edgekit")
    sys.exit(0)
