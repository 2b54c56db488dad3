"""The `edgekit` command line: a thin layer over the library (parse, one call, render, exit code).

Only this package imports typer and rich.
"""

from __future__ import annotations

from edgekit.cli.app import app, main

__all__ = ["app", "main"]
