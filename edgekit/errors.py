"""The error tree of edgekit. Library code raises these; the CLI turns them into exit codes.

    EdgekitError
    ├── UsageError            bad arguments or options (exit 2)
    │   └── FileFormatError     a file edgekit reads back fails validation (exit 2)
    ├── ModelLoadError        missing, corrupt, TorchScript or untrusted pickle model files (exit 2)
    ├── DataError             calibration / parity data that cannot be used (exit 2)
    ├── OutputError           the output folder cannot be written (exit 2)
    ├── ExportError           a converter or quantizer failed (exit 1)
    │   └── UnsupportedOpError  the converter rejected an op (names the op and the layer)
    ├── AnalysisError         a comparison, metric or explanation cannot be computed (exit 1)
    └── DeviceError           a phone or the benchmark app misbehaved (exit 1)
        ├── ProtocolError         a config or result file that breaks the app protocol (exit 2)
        ├── DeviceSelectionError  no, several, unauthorized or offline devices (exit 2)
        ├── AppNotInstalledError  the benchmark app is missing and no APK was given (exit 2)
        ├── DeviceTimeoutError    a device step ran past its timeout
        ├── AppCrashError         the app process died during a run
        ├── TransferError         push/pull failed or the pushed file does not verify
        └── DeviceGoneError       the device disappeared (unplugged) mid-run

Every message is one line that names the problem and the fix.
"""

from __future__ import annotations


class EdgekitError(Exception):
    """Base of every error edgekit raises on purpose."""

    exit_code = 1


class UsageError(EdgekitError):
    """Options that do not fit together or do not parse."""

    exit_code = 2


class FileFormatError(UsageError):
    """A manifest, eval folder, result or log that edgekit reads back is hand-edited, truncated or hostile."""

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


class AnalysisError(EdgekitError):
    """Outputs that cannot be compared, or a metric or heatmap that cannot be computed."""

    exit_code = 1


class DeviceError(EdgekitError):
    """A phone, the ADB link or the benchmark app failed."""

    exit_code = 1


class ProtocolError(DeviceError):
    """A config or result file that does not follow the app protocol."""

    exit_code = 2


class DeviceSelectionError(DeviceError):
    """The --device choice does not name exactly the usable devices."""

    exit_code = 2


class AppNotInstalledError(DeviceError):
    """The benchmark app is not installed (or is another version) and no APK is at hand."""

    exit_code = 2


class DeviceTimeoutError(DeviceError):
    """A device step did not finish within its timeout."""


class AppCrashError(DeviceError):
    """The benchmark app process died."""


class TransferError(DeviceError):
    """A push or pull failed, or a pushed file does not match its size and sha256."""


class DeviceGoneError(DeviceError):
    """The device went away (unplugged, adb server gone) in the middle of the work."""
