"""``python -m edgekit.arm64 build [DEST] [--force]``: what ``make arm64`` runs.

Builds the arm64 environment (see :mod:`edgekit.arm64.build`) and prints one line
per step; a failure is one line on stderr and exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Parse ``build [DEST] [--force]`` and build."""
    from edgekit.arm64 import Arm64EnvError, default_location
    from edgekit.arm64.build import build

    args = [a for a in argv if a != "--force"]
    if not args or args[0] != "build" or len(args) > 2:
        print("usage: python -m edgekit.arm64 build [DEST] [--force]", file=sys.stderr)
        return 2
    dest = Path(args[1]) if len(args) == 2 else default_location()
    if dest is None:
        print("error: name the folder to build in (or set EDGEKIT_ARM64_ENV)", file=sys.stderr)
        return 2
    try:
        facts = build(dest, progress=lambda m: print(f"arm64: {m}", flush=True), force="--force" in argv)
    except Arm64EnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seen = facts.get("seen", {})
    on = [k for k, v in seen.get("features", {}).items() if v]
    print(f"arm64: runtimes see {', '.join(on)}; SVE {seen.get('sve_vector_bits', 0)}-bit", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
