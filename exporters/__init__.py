"""edgekit.exporters: one module per output format, registered by decorator.

This folder is installed as ``edgekit.exporters`` (setuptools ``package-dir``); it is
never a top-level ``exporters`` package.
"""

from __future__ import annotations

if __name__ != "edgekit.exporters":
    raise ImportError(
        "the 'exporters' folder is part of edgekit: import edgekit.exporters "
        "(install the project with 'pip install -e .')"
    )

from edgekit.exporters.registry import (
    ExportContext,
    VariantFlag,
    VariantInfo,
    available,
    declare_flag,
    flags,
    get_variant,
    register,
    variants_for,
)

__all__ = [
    "ExportContext",
    "VariantFlag",
    "VariantInfo",
    "available",
    "declare_flag",
    "flags",
    "get_variant",
    "register",
    "variants_for",
]
