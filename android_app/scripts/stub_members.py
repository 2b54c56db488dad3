"""List every member the compile-time stubs declare, and check them against the real sources.

    python android_app/scripts/stub_members.py                 # print stub -> members
    python android_app/scripts/stub_members.py --verify NAME=GITDIR ...

``stubs/CHECKED.json`` names, for every stub file, the real source (repository, path, version) its
signatures were read from and the members checked. ``tests/android_app/test_kotlin_stubs.py``
keeps that listing equal to what the stubs declare; ``--verify`` looks each member's name up in
the real file at that version in a local git clone of the repository (``NAME`` is the
repository as CHECKED.json spells it, e.g. ``google-ai-edge/LiteRT=/path/to/LiteRT``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

STUBS = Path(__file__).resolve().parents[1] / "stubs"
CHECKED = STUBS / "CHECKED.json"

_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_TYPES = re.compile(r"\b(?:class|interface|enum|@interface|object)\s+(\w+)")
# a declaration: a type (or fun) then a name then ( or = or ; -- not a call or a keyword
_JAVA_DECL = re.compile(
    r"^\s*(?!return\b|throw\b|new\b)(?:(?:public|protected|static|final|abstract|native|synchronized)\s+)*"
    r"(?:<[^>]+>\s*)?[\w.]+(?:<[^;{()]*>)?(?:\[\])*\s+(\w+)\s*(?:\(|=|;)",
    re.M,
)
_KOTLIN_DECL = re.compile(r"\b(?:fun|val|var)\s+(?:<[^>]+>\s*)?(\w+)")
_ENUM_BODY = re.compile(r"\benum\s+(?:class\s+)?\w+\s*(?:\([^)]*\))?\s*(?::[^{]*)?\{([^;}]*)")


def members(path: Path) -> list[str]:
    """The names a stub file declares (types, methods, fields, enum constants), sorted."""
    text = _COMMENTS.sub("", path.read_text(encoding="utf-8"))
    text = re.sub(r"@(?!interface\b)\w+(?:\([^)]*\))?", "", text)  # annotations
    names = set(_TYPES.findall(text))
    if path.suffix == ".java":
        names.update(
            n for n in _JAVA_DECL.findall(text) if n not in ("if", "for", "while", "switch", "catch")
        )
    else:
        names.update(_KOTLIN_DECL.findall(re.sub(r"\([^()]*\)", "()", text)))
        names.update(re.findall(r"\((?:\s*(?:val|var)\s+(\w+)[^,)]*,?)", text))
        for params in re.findall(r"class\s+\w+\s*\(([^{]*?)\)\s*(?::|\{|$)", text, re.M):
            names.update(re.findall(r"(?:val|var)\s+(\w+)", params))
    for body in _ENUM_BODY.findall(text):
        names.update(re.findall(r"\b([A-Z]\w*)\b", re.sub(r"\([^)]*\)", "", body)))
    return sorted(names - {"class", "object", "interface"})


def stub_files() -> list[str]:
    """Every stub file, relative to stubs/."""
    return sorted(str(p.relative_to(STUBS)) for p in STUBS.rglob("*") if p.suffix in (".java", ".kt"))


def _spellings(name: str) -> list[str]:
    """A Java getter's name and the Kotlin property it may be (getDataAsFloatArray: dataAsFloatArray)."""
    m = re.fullmatch(r"(?:get|is)([A-Z])(\w*)", name)
    return [name] + ([m.group(1).lower() + m.group(2)] if m else [])


def verify(clones: dict[str, Path]) -> list[str]:
    """Members of CHECKED.json whose name is not in the real file at the listed version."""
    missing = []
    for stub, entry in json.loads(CHECKED.read_text()).items():
        for source in entry["sources"]:
            clone = clones.get(source["repo"])
            if clone is None or not source.get("ref"):
                continue
            texts = []
            for path in source["paths"]:
                run = subprocess.run(["git", "-C", str(clone), "show", f"{source['ref']}:{path}"],
                                     capture_output=True, text=True, check=False)  # fmt: skip
                if run.returncode != 0:
                    missing.append(f"{stub}: {source['repo']} has no {path} at {source['ref']}")
                texts.append(run.stdout)
            text = "\n".join(texts)
            missing += [f"{stub}: {name} not in {source['repo']}@{source['ref']}"
                        for name in source["members"] if not any(re.search(rf"\b{re.escape(n)}\b", text)
                                                                 for n in _spellings(name))]  # fmt: skip
    return missing


def main(argv: list[str]) -> int:
    if argv[:1] == ["--verify"]:
        clones = {k: Path(v) for k, v in (a.split("=", 1) for a in argv[1:])}
        missing = verify(clones)
        print("\n".join(missing) or f"every listed member found in {', '.join(clones)}")
        return 1 if missing else 0
    print(json.dumps({f: members(STUBS / f) for f in stub_files()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
