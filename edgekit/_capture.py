"""Capture what converters print (C++ logs, tqdm bars, progress lines) so the CLI stays readable.

The output goes to a temporary file at the file-descriptor level (C++ code writes
there directly); it is returned for the manifest log and quoted when a step fails.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout


class Captured:
    """Text a captured block printed; filled in when the block exits."""

    def __init__(self) -> None:
        self.text = ""

    def tail(self, lines: int = 5) -> str:
        """The last non-empty lines, joined with ' | ' for a one-line error."""
        kept = [ln.strip() for ln in self.text.splitlines() if ln.strip()]
        return " | ".join(kept[-lines:])


@contextmanager
def captured_output() -> Iterator[Captured]:
    """Redirect fds 1 and 2 (and sys.stdout/stderr) into a temp file for the block."""
    result = Captured()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    py_text = io.StringIO()  # Python-level writes, when sys.stdout is not fd 1 (test runners)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            with redirect_stdout(py_text), redirect_stderr(py_text):
                yield result
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            tmp.seek(0)
            result.text = tmp.read().decode("utf-8", "replace") + py_text.getvalue()
