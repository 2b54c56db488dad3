"""Device profiles are data (``profiles/*.json``); this module only reads them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from edgekit.errors import UsageError


@dataclass(frozen=True)
class DeviceProfile:
    """What edgekit knows about a phone model: hardware, RAM budget, threads worth sweeping."""

    name: str
    match_model: str
    marketing_name: str
    soc: str
    gpu: str
    ram_gb: int
    ram_budget_mb: int
    threads: tuple[int, ...]
    accelerators: tuple[str, ...]
    abi: str
    emulated_props: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeviceProfile:
        """Build from the JSON form, lists becoming tuples."""
        return cls(**{**d, "threads": tuple(d["threads"]), "accelerators": tuple(d["accelerators"])})


@cache
def profiles() -> dict[str, DeviceProfile]:
    """Every bundled profile by name."""
    out: dict[str, DeviceProfile] = {}
    for entry in resources.files("edgekit.device").joinpath("profiles").iterdir():
        if entry.name.endswith(".json"):
            p = DeviceProfile.from_dict(json.loads(entry.read_text(encoding="utf-8")))
            out[p.name] = p
    return out


def get_profile(name: str) -> DeviceProfile:
    """The profile ``name``; a UsageError lists the known ones."""
    known = profiles()
    if name not in known:
        raise UsageError(f"unknown device profile {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


def profile_for_model(model: str) -> DeviceProfile | None:
    """The profile whose ``ro.product.model`` matches, if any."""
    for p in profiles().values():
        if p.match_model.lower() == model.strip().lower():
            return p
    return None
