"""The deepfake data sets as they ship: FaceForensics++, Celeb-DF and DFDC read in their own layouts.

Every consumer asks :func:`read_data` (through :func:`edgekit.data.labels.discover`); the layout
is recognised from the folder, or named with ``--dataset``:

- ``ff++``: ``original_sequences/{youtube,actors}/<quality>/videos/*.mp4`` are real,
  ``manipulated_sequences/<Method>/<quality>/videos/*.mp4`` fake, the method from the folder.
  ``--quality`` picks c23/c40/raw (c23 when present). ``--split train|val|test`` keeps the videos
  of the official split file (``<split>.json`` in the root or ``splits/``: a list of
  ``[target, source]`` id pairs; originals are ``<id>.mp4``, fakes ``<target>_<source>.mp4``).
  DeepFakeDetection and its ``actors`` originals are in no split file: a split leaves them out,
  said so.
- ``celebdf`` (v1 and v2): ``Celeb-real/`` and ``YouTube-real/`` are real, ``Celeb-synthesis/``
  fake. ``--split test`` keeps the videos of ``List_of_testing_videos.txt``, whose lines are
  ``<label> <path>`` with Celeb-DF's own convention, **1 = real, 0 = synthesized** (the reverse of
  edgekit's; DeepfakeBench's pre-processing flips it the same way). A line whose label contradicts
  its folder is refused: the list was edited or converted. ``--split train`` is everything else.
- ``dfdc``: folders holding ``metadata.json`` (``{"<file>.mp4": {"label": "REAL"|"FAKE",
  "split": ..., "original": ...}}``, the training parts), and the test set's ``labels.csv``
  (``filename,label``, 1 = fake). ``--split`` filters on the metadata's own ``split``.
- ``folders`` (``real/`` and ``fake/``) and ``list`` (a CSV/JSON of ``path,label``): edgekit's own.

Wherever a layout has ``videos/`` it may instead have ``frames/<video>/`` folders of extracted
frames (the common pre-processing output): each folder is read as one video of frames.

Only files inside the data root are read: a link that leads outside is skipped and counted.
Partial downloads (a method or a quality missing, listed videos absent) are reported as notes,
never fatal; a layout with nothing labelled is one :class:`~edgekit.errors.DataError`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from edgekit.data.labels import IMAGE_EXTS, VIDEO_EXTS, Item, from_folder, from_list
from edgekit.errors import DataError
from edgekit.validate import parse_json

#: FaceForensics++'s manipulation methods, in its own spelling
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
_FFPP_CLASSIC = FFPP_METHODS[:4]
_FFPP_QUALITIES = ("c23", "c40", "raw")
SPLITS = ("train", "val", "test")
#: the largest label file read (DFDC's biggest metadata.json is about 2 MB)
MAX_LABEL_FILE = 64 * 1024 * 1024


@dataclass(frozen=True)
class ReadOptions:
    """How to read a data folder: the layout (None: recognise it), FF++ quality, official split."""

    dataset: str | None = None
    quality: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class Listing:
    """What a data folder holds: its layout, the labelled items, and what was missing or skipped."""

    layout: str
    items: tuple[Item, ...]
    notes: tuple[str, ...] = ()
    split: str | None = None
    quality: str | None = None


@dataclass(frozen=True)
class Layout:
    """A registered data set layout."""

    name: str
    detect: Callable[[Path], bool]
    read: Callable[[Path, ReadOptions], Listing]
    summary: str


LAYOUTS: dict[str, Layout] = {}


def layout(name: str, summary: str, detect: Callable[[Path], bool]) -> Callable[..., Callable[..., Listing]]:
    """Register a reader under ``name`` (the registry ``--dataset`` and auto-detection ask)."""

    def wrap(fn: Callable[[Path, ReadOptions], Listing]) -> Callable[[Path, ReadOptions], Listing]:
        LAYOUTS[name] = Layout(name, detect, fn, summary)
        return fn

    return wrap


@dataclass
class _Walk:
    """Files under a root, never leaving it; links that lead outside are counted, not followed."""

    root: Path
    outside: int = 0

    def inside(self, path: Path) -> bool:
        try:
            path.resolve().relative_to(self.root.resolve())
        except (ValueError, OSError):
            self.outside += 1
            return False
        return True

    def children(self, folder: Path) -> list[Path]:
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            return []
        return [p for p in entries if self.inside(p)]

    def videos(self, folder: Path) -> Iterator[Path]:
        """Video files and frame folders directly in ``folder`` (or in its ``videos/`` and ``frames/``)."""
        for place in (folder, folder / "videos", folder / "frames"):
            if not place.is_dir() or not self.inside(place):
                continue
            for p in self.children(place):
                video = p.is_file() and p.suffix.lower() in VIDEO_EXTS
                if video or (p.is_dir() and p.name not in ("videos", "frames") and _is_frame_folder(p)):
                    yield p


def _is_frame_folder(folder: Path) -> bool:
    try:
        return any(p.suffix.lower() in IMAGE_EXTS and p.is_file() for p in folder.iterdir())
    except OSError:
        return False


def _item(walk: _Walk, path: Path, label: int, method: str | None) -> Item:
    rel = path.relative_to(walk.root).as_posix()
    return Item(path, rel, label, method if label == 1 else None, frames_dir=path.is_dir())


def _video_key(path: Path) -> str:
    return path.stem if path.is_file() else path.name


def _read_text(path: Path, what: str) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_LABEL_FILE:
            raise DataError(f"{path}: {size} bytes is too large for a {what} (at most {MAX_LABEL_FILE})")
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: cannot read the {what} ({type(exc).__name__}); restore it from the download"
        ) from exc


def _read_json(path: Path, what: str) -> object:
    return parse_json(_read_text(path, what), f"{path} ({what}; restore it from the download)", DataError)


# --- FaceForensics++ -------------------------------------------------------------------------


def _is_ffpp(root: Path) -> bool:
    return (root / "original_sequences").is_dir() or (root / "manipulated_sequences").is_dir()


def _ffpp_split(root: Path, split: str) -> tuple[set[str], set[frozenset[str]], Path]:
    """(video ids, fake pairs) of an official FF++ split file."""
    for place in (root, root / "splits", root / "dataset" / "splits"):
        path = place / f"{split}.json"
        if path.is_file():
            break
    else:
        raise DataError(
            f"--split {split}: no {split}.json in {root} or {root / 'splits'}; copy FaceForensics++'s "
            f"dataset/splits/{split}.json there"
        )
    raw = _read_json(path, "FaceForensics++ split file")
    rows: list[list[str]] = raw if isinstance(raw, list) else []
    ok = all(
        isinstance(r, list) and len(r) == 2 and all(isinstance(v, str) and v.isdigit() for v in r)
        for r in rows
    )
    if not ok or not rows:
        raise DataError(f'{path}: expected a list of [target, source] id pairs such as [["953", "974"]]')
    return {v for r in rows for v in r}, {frozenset(r) for r in rows}, path


@layout(
    "ff++",
    "FaceForensics++: original_sequences/ and manipulated_sequences/<Method>/<quality>/videos",
    _is_ffpp,
)
def read_ffpp(root: Path, opts: ReadOptions) -> Listing:
    """FaceForensics++ as downloaded by its script (see the module docstring)."""
    walk = _Walk(root)
    groups = [("real", root / "original_sequences" / s) for s in ("youtube", "actors")]
    groups += [(m.name, m) for m in walk.children(root / "manipulated_sequences") if m.is_dir()]
    present = {q.name for _, g in groups if g.is_dir() for q in walk.children(g) if q.is_dir()}
    quality = opts.quality
    if quality is None:
        if "c23" in present or not present:
            quality = "c23"
        elif len(present) == 1:
            quality = next(iter(present))
        else:
            raise DataError(
                f"{root} holds the qualities {', '.join(sorted(present))}; choose one with --quality"
            )
    notes: list[str] = []
    split = None
    if opts.split is not None:
        ids, pairs, split_file = _ffpp_split(root, opts.split)
        split = opts.split
    items: list[Item] = []
    left_out = 0
    for method, folder in groups:
        where = folder / quality
        if not where.is_dir():
            if folder.is_dir():
                notes.append(
                    f"{folder.relative_to(root)}: no {quality} folder (has {', '.join(sorted(q.name for q in walk.children(folder) if q.is_dir())) or 'nothing'})"
                )
            continue
        label = 0 if method == "real" else 1
        for video in walk.videos(where):
            if split is not None:
                if folder.name in ("actors", "DeepFakeDetection"):
                    left_out += 1
                    continue
                key = _video_key(video).split("_")
                if not (key[0] in ids if label == 0 else len(key) == 2 and frozenset(key) in pairs):
                    continue
            items.append(_item(walk, video, label, None if label == 0 else method))
    found = {i.method for i in items if i.label == 1}
    missing = [m for m in _FFPP_CLASSIC if m not in found]
    if missing and items:
        notes.append(f"no {quality} videos of {', '.join(missing)}: those methods are not in this evaluation")
    if left_out:
        notes.append(
            f"{left_out} DeepFakeDetection/actors videos are in no split file: left out of --split {split}"
        )
    if walk.outside:
        notes.append(f"{walk.outside} links leading outside {root} were skipped")
    if not items:
        wanted = f"{quality} videos" + (f" of the {split} split ({split_file.name})" if split else "")
        raise DataError(
            f"{root}: a FaceForensics++ layout with no {wanted}; expected "
            f"original_sequences/youtube/{quality}/videos/*.mp4 and manipulated_sequences/<Method>/{quality}/videos/*.mp4"
        )
    return Listing("ff++", tuple(items), tuple(notes), split, quality)


# --- Celeb-DF --------------------------------------------------------------------------------

_CELEB_FOLDERS = {"Celeb-real": 0, "YouTube-real": 0, "Celeb-synthesis": 1}
#: Celeb-DF's List_of_testing_videos.txt labels: 1 real, 0 synthesized (its README's convention)
_CELEB_LIST_LABELS = {"1": 0, "0": 1}


def _is_celebdf(root: Path) -> bool:
    return any((root / f).is_dir() for f in _CELEB_FOLDERS)


def _celeb_test_list(root: Path) -> dict[str, int]:
    """Relative video path (no suffix) -> edgekit label (0 real, 1 fake), from the official list."""
    path = root / "List_of_testing_videos.txt"
    if not path.is_file():
        raise DataError(f"--split test: {path} is missing; copy it from the Celeb-DF download")
    listed: dict[str, int] = {}
    for n, line in enumerate(_read_text(path, "Celeb-DF test list").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or parts[0] not in _CELEB_LIST_LABELS:
            raise DataError(
                f"{path}:{n}: expected '<1|0> <folder>/<video>.mp4' (1 real, 0 synthesized), got {line[:80]!r}"
            )
        rel = parts[1].strip().replace("\\", "/")
        label = _CELEB_LIST_LABELS[parts[0]]
        folder = rel.split("/", 1)[0]
        if folder in _CELEB_FOLDERS and _CELEB_FOLDERS[folder] != label:
            raise DataError(
                f"{path}:{n}: label {parts[0]} contradicts {folder}/ (Celeb-DF's list says 1 for real, 0 for "
                "synthesized): the list was edited or converted; restore the official one"
            )
        listed[rel.rsplit(".", 1)[0] if rel.lower().endswith(tuple(VIDEO_EXTS)) else rel] = label
    return listed


@layout(
    "celebdf",
    "Celeb-DF v1/v2: Celeb-real/, YouTube-real/, Celeb-synthesis/ (+ List_of_testing_videos.txt)",
    _is_celebdf,
)
def read_celebdf(root: Path, opts: ReadOptions) -> Listing:
    """Celeb-DF as downloaded (see the module docstring)."""
    if opts.split not in (None, "train", "test"):
        raise DataError(
            f"--split {opts.split}: Celeb-DF has only an official test list (test) and the rest (train)"
        )
    walk = _Walk(root)
    listed = _celeb_test_list(root) if opts.split else {}
    items: list[Item] = []
    notes: list[str] = []
    seen: set[str] = set()
    for folder, label in _CELEB_FOLDERS.items():
        if not (root / folder).is_dir():
            notes.append(f"{folder}/ is missing: its videos are not in this evaluation")
            continue
        for video in walk.videos(root / folder):
            key = f"{folder}/{_video_key(video)}"
            if opts.split == "test" and key not in listed:
                continue
            if opts.split == "train" and key in listed:
                continue
            seen.add(key)
            items.append(_item(walk, video, label, "Celeb-synthesis" if label else None))
    if opts.split == "test" and len(seen) < len(listed):
        notes.append(f"{len(listed) - len(seen)} of the {len(listed)} listed test videos are not on disk")
    if walk.outside:
        notes.append(f"{walk.outside} links leading outside {root} were skipped")
    if not items:
        raise DataError(f"{root}: a Celeb-DF layout with no videos" + (f" in the {opts.split} split" if opts.split else "")
                        + "; expected Celeb-real/*.mp4, YouTube-real/*.mp4 and Celeb-synthesis/*.mp4")  # fmt: skip
    return Listing("celebdf", tuple(items), tuple(notes), opts.split)


# --- DFDC ------------------------------------------------------------------------------------


def _dfdc_label_files(root: Path) -> tuple[list[Path], list[Path]]:
    meta = [p / "metadata.json" for p in [root, *sorted(q for q in root.iterdir() if q.is_dir())]
            if (p / "metadata.json").is_file()] if root.is_dir() else []  # fmt: skip
    csvs = [p / "labels.csv" for p in (root, root / "test") if (p / "labels.csv").is_file()]
    return meta, csvs


def _is_dfdc(root: Path) -> bool:
    try:
        meta, csvs = _dfdc_label_files(root)
    except OSError:
        return False
    return bool(meta or csvs)


_DFDC_LABELS = {"REAL": 0, "FAKE": 1, "0": 0, "1": 1}


def _dfdc_file(folder: Path, name: object, where: str) -> Path:
    """The video a DFDC label names (or its frame folder), looked for next to the label file."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise DataError(f"{where}: {name!r} is not a plain video file name")
    for place in (folder, folder / "videos", folder / "frames"):
        for candidate in (place / name, place / Path(name).stem):
            if candidate.exists():
                return candidate
    return folder / name


@layout("dfdc", "DFDC: folders with metadata.json (REAL/FAKE), the test set's labels.csv", _is_dfdc)
def read_dfdc(root: Path, opts: ReadOptions) -> Listing:
    """DFDC as downloaded (see the module docstring)."""
    walk = _Walk(root)
    meta_files, csv_files = _dfdc_label_files(root)
    items: list[Item] = []
    missing = 0
    wanted_split = opts.split
    for meta in meta_files:
        data = _read_json(meta, "DFDC metadata.json")
        if not isinstance(data, dict):
            raise DataError(f'{meta}: expected an object of "<file>.mp4": {{"label": "REAL"|"FAKE", ...}}')
        for name, entry in sorted(data.items()):
            label = _DFDC_LABELS.get(str(entry.get("label", "")).upper()) if isinstance(entry, dict) else None
            if label is None:
                raise DataError(f"{meta}: {name!r} has no label REAL or FAKE")
            if wanted_split is not None and str(entry.get("split", "")) != wanted_split:
                continue
            path = _dfdc_file(meta.parent, name, str(meta))
            if not path.exists():
                missing += 1
                continue
            if walk.inside(path):
                items.append(_item(walk, path, label, "DFDC"))
    if wanted_split in (None, "test"):
        for labels in csv_files:
            rows = list(csv.DictReader(_read_text(labels, "DFDC labels.csv").splitlines()))
            if not rows or not {"filename", "label"} <= set(rows[0]):
                raise DataError(f"{labels}: expected the columns filename,label (1 = fake)")
            for n, row in enumerate(rows, 2):
                label = _DFDC_LABELS.get(str(row["label"]).strip().upper())
                if label is None:
                    raise DataError(f"{labels}:{n}: label {row['label']!r} is not 0/1 (1 = fake)")
                path = _dfdc_file(labels.parent, str(row["filename"]).strip(), f"{labels}:{n}")
                if not path.exists():
                    missing += 1
                    continue
                if walk.inside(path):
                    items.append(_item(walk, path, label, "DFDC"))
    notes = [f"{missing} labelled videos are not on disk"] if missing else []
    if walk.outside:
        notes.append(f"{walk.outside} links leading outside {root} were skipped")
    if not items:
        raise DataError(f"{root}: a DFDC layout with no labelled video on disk" + (f" in split {wanted_split}" if wanted_split else "")
                        + "; expected <folder>/metadata.json next to its .mp4 files, or test/labels.csv")  # fmt: skip
    return Listing("dfdc", tuple(items), tuple(notes), wanted_split)


# --- dispatch --------------------------------------------------------------------------------


def recognise(data: Path) -> str:
    """The layout name of ``data``: ``list`` for a file, an official layout, else ``folders``."""
    if data.is_file():
        return "list"
    for name in ("ff++", "celebdf", "dfdc"):
        if LAYOUTS[name].detect(data):
            return name
    return "folders"


def read_data(data: Path, opts: ReadOptions | None = None) -> Listing:
    """Every labelled item of ``data`` in its layout (recognised, or ``opts.dataset``)."""
    opts = opts or ReadOptions()
    data = Path(data)
    if not data.exists():
        raise DataError(f"--data {data} does not exist; pass a data set folder or a CSV/JSON of path,label")
    if opts.split is not None and opts.split not in SPLITS:
        raise DataError(f"--split {opts.split}: choose one of {', '.join(SPLITS)}")
    if opts.quality is not None and not re.fullmatch(r"c23|c40|raw", opts.quality):
        raise DataError(f"--quality {opts.quality}: choose c23, c40 or raw (FaceForensics++'s folders)")
    name = opts.dataset or recognise(data)
    if name not in LAYOUTS:
        raise DataError(f"--dataset {name}: choose one of {', '.join(LAYOUTS)}")
    if name in ("folders", "list") and (opts.split or opts.quality):
        raise DataError(
            f"--split/--quality need an official layout ({', '.join(n for n in LAYOUTS if n not in ('folders', 'list'))}); {data} is read as {name}"
        )
    if data.is_file() != (name == "list"):
        raise DataError(
            f"--dataset {name} needs a {'file' if name == 'list' else 'folder'}; {data} is not one"
        )
    return LAYOUTS[name].read(data, opts)


@layout("folders", "real/ and fake/ folders (fake/<method>/ names the method)", lambda p: p.is_dir())
def _read_folders(root: Path, opts: ReadOptions) -> Listing:
    outside: list[str] = []
    items = tuple(from_folder(root, outside))
    if not items:
        raise nothing_labelled(root)
    notes = (f"{len(outside)} links leading outside {root} were skipped",) if outside else ()
    return Listing("folders", items, notes)


@layout("list", "a CSV/JSON list of path,label[,method]", lambda p: p.is_file())
def _read_list(path: Path, opts: ReadOptions) -> Listing:
    return Listing("list", tuple(from_list(path)))  # an empty list is refused there


def _frame_files(folder: Path) -> list[Path]:
    """A frame folder's images in frame order (numbers compared as numbers: 2 before 10)."""

    def key(p: Path) -> tuple[object, ...]:
        return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name))

    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS), key=key)


def frame_files(folder: Path) -> list[Path]:
    """The images of a frame folder (one extracted video), in frame order, inside the folder only."""
    root = folder.resolve()
    out = []
    for p in _frame_files(folder):
        try:
            p.resolve().relative_to(root)
        except ValueError:
            continue
        out.append(p)
    return out


def discover(data: Path, options: ReadOptions | None = None) -> list[Item]:
    """Every labelled image/video under ``data``: a folder in one of the layouts of
    :mod:`edgekit.data.layouts` (FaceForensics++, Celeb-DF, DFDC, real/ and fake/ folders) or a
    CSV/JSON list."""
    return list(read_data(Path(data), options).items)


def nothing_labelled(data: Path) -> DataError:
    """The error for a folder or list without a single labelled image or video."""
    if data.is_dir() and any(data.rglob("*.*")):
        return DataError(
            f"no labels under {data}: put files under real/ and fake/ folders, pass a CSV of path,label, "
            "or name the layout with --dataset ff++|celebdf|dfdc"
        )
    return DataError(f"--data {data} holds no images or videos; add some under real/ and fake/")
