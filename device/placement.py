"""Where a runtime actually put a model's ops: the accelerator truth of a bench result.

The app reads it from the runtime's own account (LiteRT's delegation log lines in logcat, ONNX
Runtime's profile); the emulated device reads the same accounts, or LiteRT's graph after
delegation. Both sides parse the shared vectors in ``android_app/protocol/vectors`` alike
(``Placement.java`` is the app's twin of this module). ``result.json`` is untrusted: every field is
checked and bounded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import ProtocolError
from edgekit.validate import parse_json

#: ops no delegate took: they run on the runtime's built-in CPU kernels
BUILTIN = "builtin"
#: at most this many backends or op types are read from a result
MAX_ENTRIES = 64
_SOURCES = ("tflite_log", "tflite_graph", "ort_profile")
# tflite/core/subgraph.cc's line when a delegate takes nodes (logged on Android at INFO, tag tflite)
_REPLACING = re.compile(
    r"Replacing (\d+) out of (\d+) node\(s\) with delegate \(([^)]{1,120})\) node, "
    r"yielding (\d+) partitions for subgraph (\d+)"
)


def kind(backend: str) -> str:
    """The hardware a backend named by its runtime runs on: xnnpack, nnapi, gpu, npu or cpu."""
    b = backend.lower()
    if "xnnpack" in b:
        return "xnnpack"
    if "nnapi" in b:
        return "nnapi"
    if any(k in b for k in ("gpu", "opencl", "vulkan")):
        return "gpu"
    if any(k in b for k in ("npu", "dispatch", "qnn", "neuron")):
        return "npu"
    return "cpu"


@dataclass(frozen=True)
class Placement:
    """How many of the model's ops each backend ran, and (ONNX Runtime) per op type the kernel time."""

    source: str
    total_ops: int
    ops: dict[str, int] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)
    op_times_ms: dict[str, float] = field(default_factory=dict)

    def fraction(self, accelerator: str) -> float | None:
        """Share of the ops on the requested hardware: for cpu, on XNNPACK (the rest runs on slower
        built-in kernels); for gpu/npu, on that accelerator or NNAPI. None without an op count."""
        if self.total_ops <= 0:
            return None
        wanted = {"xnnpack"} if accelerator == "cpu" else {accelerator, "nnapi"}
        n = sum(v for k, v in self.ops.items() if kind(k) in wanted)
        return min(1.0, n / self.total_ops)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (as in result.json)."""
        return {
            "source": self.source,
            "total_ops": self.total_ops,
            "ops": dict(self.ops),
            "partitions": dict(self.partitions),
            "op_times_ms": {k: round(v, 4) for k, v in self.op_times_ms.items()},
        }

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Placement:
        """Parse and validate the JSON form read from a device."""
        if not isinstance(d, dict):
            raise ProtocolError(f"{where}: not an object")
        source, total = d.get("source"), d.get("total_ops")
        if source not in _SOURCES:
            raise ProtocolError(f"{where}.source must be one of {', '.join(_SOURCES)}")
        if type(total) is not int or not 0 <= total < 1 << 31:
            raise ProtocolError(f"{where}.total_ops must be a non-negative integer")

        def table(key: str, number: type | tuple[type, ...]) -> dict[str, Any]:
            t = d.get(key) or {}
            if not isinstance(t, dict) or len(t) > MAX_ENTRIES:
                raise ProtocolError(f"{where}.{key} must be an object of at most {MAX_ENTRIES} entries")
            for k, v in t.items():
                if len(k) > 200 or type(v) not in (number if isinstance(number, tuple) else (number,)):
                    raise ProtocolError(f"{where}.{key}.{k[:40]} must be a number")
                if not 0 <= v < 1 << 31:
                    raise ProtocolError(f"{where}.{key}.{k[:40]} out of range")
            return dict(t)

        ops = table("ops", int)
        if sum(ops.values()) > max(total, 0):
            raise ProtocolError(f"{where}: the ops per backend add up to more than total_ops")
        return cls(source, total, ops, table("partitions", int),
                   {k: float(v) for k, v in table("op_times_ms", (int, float)).items()})  # fmt: skip


def from_tflite_log(lines: Iterable[str]) -> Placement | None:
    """From LiteRT's log: each delegate's take of subgraph 0, counted against the first line's total
    (a later delegate sees the graph the earlier ones left). None: no delegate took anything."""
    ops: dict[str, int] = {}
    parts: dict[str, int] = {}
    total = -1
    for line in lines:
        m = _REPLACING.search(line)
        if not m or m.group(5) != "0":
            continue
        delegate = m.group(3)
        if total < 0 or delegate in ops:  # a delegate seen again: a later model in the process counts
            ops, parts, total = {}, {}, int(m.group(2))
        if len(ops) < MAX_ENTRIES:
            ops[delegate], parts[delegate] = int(m.group(1)), int(m.group(4))
    if total < 0:
        return None
    ops[BUILTIN] = max(0, total - sum(ops.values()))
    return Placement("tflite_log", total, ops, parts)


def from_ort_profile(text: str) -> Placement:
    """From ONNX Runtime's profile JSON: the provider of every node and its kernel time (a node a
    provider fused counts once)."""
    events = parse_json(text, "ONNX Runtime profile (a JSON array of events)", ProtocolError)
    if not isinstance(events, list):
        raise ProtocolError("ONNX Runtime profile: not a JSON array of events")
    ops: dict[str, int] = {}
    times: dict[str, float] = {}
    seen: set[str] = set()
    for e in events:
        if (
            not isinstance(e, dict)
            or e.get("cat") != "Node"
            or not str(e.get("name", "")).endswith("_kernel_time")
        ):
            continue
        raw = e.get("args")
        args: dict[str, Any] = raw if isinstance(raw, dict) else {}
        provider, op = str(args.get("provider", "")), str(args.get("op_name", ""))
        if not provider or not op:
            continue
        if e["name"] not in seen and (provider in ops or len(ops) < MAX_ENTRIES):
            seen.add(e["name"])
            ops[provider] = ops.get(provider, 0) + 1
        dur = e.get("dur", 0)
        if (op in times or len(times) < MAX_ENTRIES) and isinstance(dur, (int, float)):
            times[op] = times.get(op, 0.0) + max(0.0, float(dur)) / 1000.0
    return Placement("ort_profile", sum(ops.values()), ops, {}, times)


def from_tflite_graph(nodes: Sequence[dict[str, Any]]) -> Placement:
    """From LiteRT's node list after delegation (``Interpreter._get_ops_details()``): the original
    nodes plus one ``DELEGATE`` node per delegated partition, whose inputs and outputs bound the
    nodes it replaced. Walking back from each delegate node's outputs to its inputs finds them.
    Used where the runtime logs nothing (LiteRT's Linux builds keep delegation lines at VERBOSE)."""
    producer: dict[int, int] = {}
    delegates = []
    for n in nodes:
        if n["op_name"] == "DELEGATE":
            delegates.append(n)
            continue
        for t in n["outputs"]:
            producer[int(t)] = int(n["index"])
    by_index = {int(n["index"]): n for n in nodes}
    taken: set[int] = set()
    for d in delegates:
        stop = {int(t) for t in d["inputs"]}
        todo = [int(t) for t in d["outputs"]]
        while todo:
            t = todo.pop()
            if t in stop or t not in producer or producer[t] in taken:
                continue
            k = producer[t]
            taken.add(k)
            todo.extend(int(u) for u in by_index[k]["inputs"] if int(u) >= 0)
    total = len(nodes) - len(delegates)
    name = "TfLiteXNNPackDelegate"  # the only delegate the emulated device's LiteRT applies
    ops = {name: len(taken), BUILTIN: total - len(taken)} if delegates else {BUILTIN: total}
    return Placement("tflite_graph", total, ops)
