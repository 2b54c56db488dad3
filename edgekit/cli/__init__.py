"""The `edgekit` command line: a thin layer over the library (parse, one call, render, exit code).

Only this package imports typer and rich. ``app.py`` imports the command modules and
registers them; command modules import only ``_ui`` and ``_options``, never ``app``.
"""

from __future__ import annotations

from edgekit.cli.app import app, main

__all__ = ["app", "main"]
