"""edgekit: take a trained PyTorch detector to an Android phone and prove it still works there.

Importing this package is cheap: torch, litert and onnxruntime load only inside the
functions that need them, so ``edgekit --help`` stays instant.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
