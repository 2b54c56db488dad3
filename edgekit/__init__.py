"""edgekit: take a trained PyTorch detector to an Android phone and prove it still works there.

The public API (see :mod:`edgekit.api`)::

    import edgekit
    result = edgekit.export(model, example_input=x, variants=["fp16", "int8"], calib="calib/", out_dir="out/")
    report = edgekit.evaluate("out/", data="val/", out_dir="out/report")
    bench = edgekit.bench("out/", device="emulator")
    best = edgekit.optimize(model, calib="calib/", data="val/", max_auc_drop=0.01, out_dir="opt/")

Importing this package is cheap: the API functions load on first use, and torch, litert and
onnxruntime only inside the functions that need them, so ``edgekit --help`` stays instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from edgekit.api import (
        EvalResult,
        ExportResult,
        VariantResult,
        bench,
        evaluate,
        export,
        optimize,
        save_pt2,
    )

__all__ = [
    "EvalResult",
    "ExportResult",
    "VariantResult",
    "__version__",
    "bench",
    "evaluate",
    "export",
    "optimize",
    "save_pt2",
]
_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from edgekit import api

        return getattr(api, name)
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")
