"""Scoring sharded over Ray actors (``edgekit eval --ray``), the optional ``edgekit[ray]`` extra.

Each actor loads the export's variants once (from the export folder, which every node must
see at the same path: a shared file system, or one machine) and scores the shards it is
handed with the same decode-and-score code as the local path; the driver appends each shard's
rows to ``scores.csv`` as it arrives, so ``--resume`` and the memory bound hold as before.
Rows arrive in completion order; the scores are the local run's (same code, same files).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.errors import UsageError

if TYPE_CHECKING:
    from edgekit.data.decode import Frames
    from edgekit.data.labels import Item
    from edgekit.spec import Preprocess

#: the address meaning "start a cluster on this machine"
LOCAL = "local"


def connect(address: str, workers: int) -> Any:
    """``ray`` initialised: a local cluster of ``workers`` CPUs, or the cluster at ``address``."""
    try:
        import ray
    except ImportError:
        raise UsageError('--ray needs Ray: pip install "edgekit[ray]"') from None
    if ray.is_initialized():
        return ray
    if address not in (LOCAL, "auto"):
        _reachable(address)
    try:
        if address == LOCAL:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except ConnectionError as exc:
        raise UsageError(f"--ray {address}: no Ray cluster answers there ({exc}); check the address") from exc
    return ray


def _reachable(address: str) -> None:
    """Fail in seconds, with the address, when nothing listens there (ray.init would retry for
    minutes before giving up)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise UsageError(
            f"--ray {address}: use 'local', 'auto' or HOST:PORT of the cluster's head (ray://HOST:PORT)"
        )
    try:
        socket.create_connection((host, port), timeout=5).close()  # a listener answered: enough
    except OSError as exc:
        raise UsageError(
            f"--ray {address}: nothing answers there ({exc.strerror or exc}); start the head with "
            "'ray start --head' or check the address"
        ) from None


class ShardScorer:
    """What each Ray actor runs: the variants loaded once, then one shard of files per call."""

    def __init__(
        self, spec: Any, pre: Preprocess, build: Callable[[Any], Any], score: Callable[..., float]
    ) -> None:
        import torch

        torch.set_num_threads(1)  # one CPU per actor: Ray schedules the parallelism
        self.spec, self.pre, self.score_chunks = spec, pre, score
        self.scorers = build(spec)

    def score(self, items: list[Item]) -> tuple[list[tuple[Frames, dict[str, np.ndarray]]], dict[str, float]]:
        """Score ``items``: per chunk its provenance and one score column per variant; and the
        seconds each step took on this actor."""
        out: list[tuple[Frames, dict[str, np.ndarray]]] = []
        seconds = self.score_chunks(items, self.pre, self.spec, self.scorers, lambda f, c: out.append((f, c)))
        timing = {"decode": seconds, **{f"infer:{s.name}": s.seconds for s in self.scorers}}
        for s in self.scorers:
            s.seconds = 0.0
        return out, timing


def shards(items: list[Item], size: int) -> Iterator[list[Item]]:
    """Consecutive runs of about ``size`` files (a shard is a task: small enough to balance)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def score_on_ray(
    items: list[Item],
    spec: Any,
    pre: Preprocess,
    address: str,
    workers: int,
    sink: Callable[[Frames, dict[str, np.ndarray]], None],
    build: Callable[[Any], Any],
    score: Callable[..., float],
) -> dict[str, float]:
    """Score ``items`` on ``workers`` Ray actors; ``sink`` gets each chunk as it comes back.

    ``build(spec)`` loads the scorers and ``score(items, pre, spec, scorers, sink)`` scores
    (the local path's functions, handed in so this module does not import it back).

    Returns the seconds per step summed over the actors (CPU time spent, not wall time).
    """
    ray = connect(address, workers)
    from ray.util import ActorPool

    actor = ray.remote(num_cpus=1)(ShardScorer)
    pool = ActorPool([actor.remote(spec, pre, build, score) for _ in range(workers)])
    timing: dict[str, float] = {}
    per_shard = max(1, spec.chunk // (spec.frames if any(i.is_video for i in items) else 1))
    try:
        for chunks, seconds in pool.map_unordered(
            lambda a, s: a.score.remote(s), list(shards(items, per_shard))
        ):
            for frames, columns in chunks:
                sink(frames, columns)
            for k, v in seconds.items():
                timing[k] = timing.get(k, 0.0) + v
    except ray.exceptions.RayError as exc:
        raise UsageError(
            f"--ray: a worker failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from exc
    return timing
