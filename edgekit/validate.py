"""Checks for files edgekit reads back (manifests, eval folders, device results, bench logs).

Every such file may be hand-edited, truncated or hostile. These helpers give one-line
errors in the caller's error type, and the two rules every reader follows:

- names that become file names (variants, methods, models) are identifiers
  (:func:`safe_name`);
- every path a file names stays inside that file's folder (:func:`contained`).

Nothing here imports or calls what a file names.
"""

from __future__ import annotations

import math
import re
from pathlib import Path, PurePosixPath
from typing import Any

from edgekit.errors import EdgekitError, FileFormatError

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def safe_name(value: Any, what: str, error: type[EdgekitError] = FileFormatError) -> str:
    """``value`` when it is a plain identifier usable as a file name, else ``error``."""
    if not isinstance(value, str) or not _NAME.match(value) or ".." in value:
        raise error(f"{what} {value!r} is not a plain name (letters, digits, _ . + -)")
    return value


def is_sha256(value: Any) -> bool:
    """64 lowercase hex digits."""
    return isinstance(value, str) and bool(_SHA256.match(value))


def escape_controls(text: object, keep: str = "\n\t") -> str:
    """``text`` with every control character not in ``keep`` written out (``\\x1b``, ``\\n``): a file
    name carrying terminal escape sequences or line breaks is shown as it is named, never obeyed."""
    return "".join(c if c in keep or (c.isprintable() and c != "\x7f") else repr(c)[1:-1] for c in str(text))


def contained(root: Path, name: Any, what: str, error: type[EdgekitError] = FileFormatError) -> Path:
    """``root / name`` resolved, refusing absolute names, ``..`` and links that lead outside ``root``."""
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        raise error(f"{what} {name!r} is not a relative path inside {root}")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts:
        raise error(f"{what} {name!r} points outside {root}; only paths inside the folder are read")
    base = Path(root).resolve()
    target = (base / pure).resolve()
    if target != base and base not in target.parents:
        raise error(f"{what} {name!r} leads outside {root} (a link?); only paths inside the folder are read")
    return target


def require(d: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str,
            error: type[EdgekitError] = FileFormatError) -> Any:  # fmt: skip
    """``d[key]`` of type ``kind`` (booleans are not numbers), else ``error``."""
    if key not in d:
        raise error(f"{where}: missing field {key!r}")
    value = d[key]
    numeric = kind in (int, float, (int, float), (float, int))
    if isinstance(value, bool) and numeric:
        raise error(f"{where}: field {key!r} must be a number, got a boolean")
    if not isinstance(value, kind):
        raise error(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    if isinstance(value, float) and not math.isfinite(value):
        raise error(f"{where}: field {key!r} is not a finite number")
    return value


def optional(d: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str,
             error: type[EdgekitError] = FileFormatError) -> Any:  # fmt: skip
    """``d[key]`` checked as by :func:`require` when present and not null, else None."""
    if d.get(key) is None:
        return None
    return require(d, key, kind, where, error)


def only_keys(d: dict[str, Any], allowed: set[str], where: str,
              error: type[EdgekitError] = FileFormatError) -> None:  # fmt: skip
    """Refuse keys a writer never writes (a hand-edited file)."""
    extra = sorted(set(d) - allowed)
    if extra:
        raise error(f"{where}: unknown field {extra[0]!r}")


#: the largest JSON file edgekit reads back (its own manifests are well under 1 MB)
MAX_JSON_BYTES = 64 * 1024 * 1024


def parse_json(text: str, where: str, error: type[Exception] = FileFormatError) -> Any:
    """``text`` parsed, or ``error`` with one line naming ``where``: invalid JSON and JSON nested
    deeper than Python's recursion limit (a few thousand ``[``) alike, never a traceback."""
    import json

    try:
        return json.loads(text)
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply to be a file edgekit reads") from None
    except ValueError as exc:
        raise error(f"{where}: not valid JSON ({str(exc).splitlines()[0][:120]})") from None


def read_json(path: Path, where: str | None = None, error: type[Exception] = FileFormatError) -> Any:
    """A JSON file parsed through :func:`parse_json`, refused above :data:`MAX_JSON_BYTES`; an
    unreadable file is the same one-line ``error``."""
    where = where or str(path)
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise error(f"{where}: over {MAX_JSON_BYTES >> 20} MB: not a file edgekit reads")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{where}: cannot be read ({type(exc).__name__})") from None
    return parse_json(text, where, error)


def finite_json(obj: Any) -> Any:
    """``obj`` with every NaN/Inf float replaced by None, so the JSON written is standard."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj
