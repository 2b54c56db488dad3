"""The consoles of one command and the error boundary every command runs its library call in."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from edgekit.errors import EdgekitError
from edgekit.validate import escape_controls

T = TypeVar("T")


def _private_stream(std: TextIO) -> TextIO:
    """A stream converters cannot hijack.

    Converters write straight to fds 1/2 and edgekit captures those while they run;
    a duplicate of the descriptor keeps progress and tables visible. Streams with
    no descriptor (test runners) are used as they are.
    """
    try:
        fd = std.fileno()
    except (OSError, ValueError, AttributeError):
        return std
    std.flush()
    return os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")


def _console(std: TextIO) -> Console:
    stream = _private_stream(std)
    # Logs and pipes get a wide table instead of rich's 80-column default.
    # markup off: model paths, variant names and device messages are printed as they are
    # ("[/x]" in a path must never be read as a style tag); styles come from Text objects
    return Console(file=stream, width=None if stream.isatty() else 120, markup=False)


def visible(text: object) -> str:
    """``text`` with every control character but newline and tab shown escaped (``\\x1b``): a file
    name or device message carrying terminal escape sequences is printed, never obeyed."""
    return escape_controls(text)


def paint(text: str, style: str) -> Text:
    """``text`` in ``style``, never parsed for markup, control characters shown escaped."""
    return Text(visible(text), style=style)


def plain(text: str) -> Text:
    """``text`` as it is: rich's status spinner parses a str as markup (in its own refresh thread,
    whose traceback would reach stderr on a stray "[/x]"); a Text is never parsed."""
    return Text(visible(text))


@dataclass(frozen=True)
class UI:
    """The consoles of one command invocation: results on stdout, everything else on stderr."""

    out: Console
    err: Console

    @classmethod
    def current(cls) -> UI:
        """Consoles over the current ``sys.stdout``/``sys.stderr``."""
        return cls(_console(sys.stdout), _console(sys.stderr))

    def fail(self, exc: EdgekitError) -> typer.Exit:
        """Print one red line for ``exc`` and return the Exit to raise."""
        self.err.print(
            # one line always: a line break in a message comes from a name on disk, shown as written
            Text.assemble(("error:", "bold red"), " ", escape_controls(exc, keep="")),
            highlight=False,
            soft_wrap=True,
        )
        return typer.Exit(exc.exit_code)


@contextmanager
def error_boundary(ui: UI) -> Iterator[None]:
    """Turn library errors into one red line and their exit code; never a traceback."""
    try:
        yield
    except EdgekitError as exc:
        raise ui.fail(exc) from None
    except KeyboardInterrupt:
        ui.err.print("interrupted", style="red")
        raise typer.Exit(130) from None


def run_guarded(ui: UI, fn: Callable[[], T]) -> T:
    """Call ``fn`` inside :func:`error_boundary`."""
    with error_boundary(ui):
        return fn()
    raise AssertionError("unreachable")  # pragma: no cover
