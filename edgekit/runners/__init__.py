"""Host runners: one module per backend, one contract (`infer(feeds) -> outputs`)."""

from __future__ import annotations

from edgekit.runners.base import Runner, run_batch

__all__ = ["Runner", "run_batch"]
