"""The error tree of edgekit. Library code raises these; the CLI turns them into exit codes.

    EdgekitError
    ├── UsageError            bad arguments or options (exit 2)
    ├── ModelLoadError        missing, corrupt, TorchScript or untrusted pickle model files (exit 2)
    ├── DataError             calibration / parity data that cannot be used (exit 2)
    ├── OutputError           the output folder cannot be written (exit 2)
    └── ExportError           a converter or quantizer failed (exit 1)
        └── UnsupportedOpError  the converter rejected an op (names the op and the layer)

Every message is one line that names the problem and the fix.
"""

from __future__ import annotations


class EdgekitError(Exception):
    """Base of every error edgekit raises on purpose."""

    exit_code = 1


class UsageError(EdgekitError):
    """Options that do not fit together or do not parse."""

    exit_code = 2


class ModelLoadError(EdgekitError):
    """The model file cannot be loaded safely as asked."""

    exit_code = 2


class DataError(EdgekitError):
    """Calibration or parity data is missing, empty or of the wrong shape."""

    exit_code = 2


class OutputError(EdgekitError):
    """The output folder cannot be created or written."""

    exit_code = 2


class ExportError(EdgekitError):
    """A converter or quantizer failed on a model that loaded fine."""

    exit_code = 1


class UnsupportedOpError(ExportError):
    """The converter rejected an operator."""

    exit_code = 2
