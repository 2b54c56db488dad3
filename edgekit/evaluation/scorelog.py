"""``scores.csv`` written as the scoring goes, with a journal that makes ``--resume`` safe.

Rows are appended a chunk at a time; after each chunk the journal (``scores.progress.json``,
replaced atomically) records how many bytes of ``scores.csv`` are whole, which files are done
(skipped or without a face; scored ones are read back from the rows) and the run's fingerprint. A run killed mid-write leaves
bytes past the journal's mark: ``--resume`` cuts them off and carries on with the files not
yet done; a resume with other variants, frames, crop or data is refused.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._io import atomic_write_text, not_a_link
from edgekit.data.decode import Frames
from edgekit.errors import FileFormatError, UsageError
from edgekit.evaluation.results import SCORE_META_COLUMNS, SCORES
from edgekit.validate import read_json

JOURNAL = "scores.progress.json"
_JOURNAL_SCHEMA = "edgekit.scores-progress"


@dataclass
class Progress:
    """What the journal holds: the run's fingerprint and what is done."""

    fingerprint: dict[str, Any]
    committed_bytes: int = 0
    skipped: list[list[str]] = field(default_factory=list)
    no_face: int = 0
    videos: int = 0
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the journal."""
        return {
            "schema": _JOURNAL_SCHEMA,
            "fingerprint": self.fingerprint,
            "committed_bytes": self.committed_bytes,
            "skipped": self.skipped,
            "no_face": self.no_face,
            "videos": self.videos,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, d: Any, path: Path) -> Progress:
        """Validate a journal read back from disk."""
        bad = FileFormatError(f"{path} is not an edgekit scoring journal; run without --resume")
        if not isinstance(d, dict) or d.get("schema") != _JOURNAL_SCHEMA:
            raise bad
        raw = [d.get(k) for k in ("committed_bytes", "no_face", "videos", "rows")]
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in raw):
            raise bad
        counts = [int(c) for c in raw if isinstance(c, int)]
        skipped = d.get("skipped")
        if not isinstance(skipped, list) or not all(
            isinstance(s, list) and len(s) == 2 and all(isinstance(x, str) for x in s) for s in skipped
        ):
            raise bad
        if not isinstance(d.get("fingerprint"), dict):
            raise bad
        return cls(d["fingerprint"], counts[0], skipped, counts[1], counts[2], counts[3])


class ScoreLog:
    """Append-only ``scores.csv`` plus its journal, in ``out_dir``."""

    def __init__(
        self, out_dir: Path, columns: Sequence[str], fingerprint: dict[str, Any], resume: bool
    ) -> None:
        self.path = not_a_link(Path(out_dir) / SCORES)
        self.journal = not_a_link(Path(out_dir) / JOURNAL)
        self.columns = list(columns)
        self.done: set[str] = set()
        fingerprint = json.loads(json.dumps(fingerprint))  # as it reads back (tuples become lists)
        header = _csv_line([*SCORE_META_COLUMNS, *self.columns])
        if resume and self.journal.is_file() and self.path.is_file():
            self.progress = self._reopen(fingerprint, header)
        else:
            if resume and self.path.is_file() and not self.journal.is_file():
                raise UsageError(
                    f"{self.path} was finished or not written by a resumable run (no {JOURNAL}); "
                    "drop --resume to score again"
                )
            self.progress = Progress(fingerprint)
            self.path.write_text(header, encoding="utf-8")
            self.progress.committed_bytes = len(header.encode("utf-8"))
            self._save()

    def _reopen(self, fingerprint: dict[str, Any], header: str) -> Progress:
        try:
            progress = Progress.from_dict(read_json(self.journal, error=ValueError), self.journal)
        except (OSError, ValueError) as exc:
            raise FileFormatError(f"{self.journal} is unreadable ({exc}); run without --resume") from exc
        if progress.fingerprint != fingerprint:
            changed = sorted(
                k
                for k in {*fingerprint, *progress.fingerprint}
                if fingerprint.get(k) != progress.fingerprint.get(k)
            )
            raise UsageError(
                f"--resume: the scores in {self.path.parent} were made with other {', '.join(changed)}; "
                "run without --resume or pass another -o"
            )
        with open(self.path, "rb") as fh:
            head = fh.read(len(header.encode("utf-8")))
        size = self.path.stat().st_size
        if head != header.encode("utf-8") or size < progress.committed_bytes:
            raise FileFormatError(f"{self.path} does not match its journal; run without --resume")
        with open(self.path, "r+b") as fh:  # rows past the mark were cut off by the kill
            fh.truncate(progress.committed_bytes)
        with open(self.path, newline="", encoding="utf-8") as fh:
            self.done = {row["video"] for row in csv.DictReader(fh)}
        self.done.update(name for name, _why in progress.skipped)
        return progress

    def is_done(self, name: str) -> bool:
        """True when the file ``name`` was scored, skipped or found faceless already."""
        return name in self.done

    def append(self, frames: Frames, columns: dict[str, np.ndarray], files: Sequence[str]) -> None:
        """Append one chunk's rows, then mark its ``files`` done in the journal."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for i, sid in enumerate(frames.sample_ids):
            row = [sid, frames.video_ids[i], frames.labels[i], frames.methods[i]]
            w.writerow(row + [f"{columns[c][i]:.7f}" for c in self.columns])
        data = buf.getvalue().encode("utf-8")
        with open(self.path, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        p = self.progress
        p.committed_bytes += len(data)
        self.done.update(files)
        p.skipped += [list(s) for s in frames.skipped]
        p.no_face += frames.no_face
        p.videos += frames.videos
        p.rows += len(frames.sample_ids)
        self._save()

    def finish(self) -> None:
        """The run is complete: the journal goes (a finished scores.csv is not resumed)."""
        self.journal.unlink(missing_ok=True)

    def _save(self) -> None:
        atomic_write_text(self.journal, json.dumps(self.progress.to_dict()) + "\n")


def _csv_line(cells: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()
