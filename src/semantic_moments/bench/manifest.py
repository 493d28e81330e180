"""Benchmark manifests: what clips a benchmark holds and how they relate.

A manifest is a JSON file::

    {
      "format": "semantic-moments/benchmark", "version": 1,
      "name": "wlasl100-subset", "kind": "real",            # or "synthetic"
      "root": "../shared/data",                             # optional; paths are relative to it
      "triplets": [                                         # (reference, positive, hard negative)
        {"id": "t0001", "category": "sign",
         "reference": "a/x.mp4", "positive": "a/y.mp4", "negative": "b/x.mp4",
         "distractors": ["..."],                            # optional, this triplet's own
         "ignore": ["..."]}                                 # optional: also correct, so not competitors
      ],
      "distractors": ["c/z.mp4", ...],                      # optional: a pool shared by every triplet
      "clips": [{"path": "a/x.mp4", "class": "a", "actor": "signer1"}, ...]   # optional: enables kNN
    }

Relative ``root`` is resolved against the manifest's folder; without ``root`` paths are relative to
that folder. Builders: ``write_synthetic`` (procedural triplets rendered to H.264 files),
``build_from_labels`` (any labelled folder tree with a ``labels.csv`` of ``path,class,actor``) and
``build_from_triplet_csv`` (a user's own copy of SimMotion-Real given as reference/positive/negative
rows plus a distractor folder).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..video import VIDEO_SUFFIXES, write_video
from .variants import MIRROR, clip_source

FORMAT_NAME = "semantic-moments/benchmark"


@dataclass(frozen=True)
class TripletEntry:
    id: str
    category: str
    reference: str
    positive: str
    negative: str
    distractors: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class LabelledClip:
    path: str
    label: str
    actor: str


@dataclass(frozen=True)
class Manifest:
    name: str
    kind: str
    root: Path
    triplets: tuple[TripletEntry, ...]
    distractors: tuple[str, ...] = ()
    clips: tuple[LabelledClip, ...] = ()
    path: Path | None = None

    def resolve(self, relative: str) -> Path:
        """The file behind a manifest path (a mirrored twin ``PATH#hflip`` or a time variant
        ``PATH#loop4``, ``variants.py``, is read from its source file)."""
        candidate = Path(clip_source(relative)[0])
        return candidate if candidate.is_absolute() else self.root / candidate

    def all_paths(self) -> list[str]:
        """Every clip the manifest mentions, each once, in a stable order."""
        seen: dict[str, None] = {}
        for triplet in self.triplets:
            for item in (triplet.reference, triplet.positive, triplet.negative, *triplet.distractors, *triplet.ignore):
                seen.setdefault(item, None)
        for item in (*self.distractors, *(clip.path for clip in self.clips)):
            seen.setdefault(item, None)
        return list(seen)

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        root = os.path.relpath(self.root, path.parent) if self.root != path.parent else None
        data: dict[str, Any] = {"format": FORMAT_NAME, "version": 1, "name": self.name, "kind": self.kind}
        if root:
            data["root"] = root
        data["triplets"] = [_triplet_json(triplet) for triplet in self.triplets]
        if self.distractors:
            data["distractors"] = list(self.distractors)
        if self.clips:
            data["clips"] = [{"path": c.path, "class": c.label, "actor": c.actor} for c in self.clips]
        _write_atomic(path, json.dumps(data, indent=1))
        return path


def _triplet_json(triplet: TripletEntry) -> dict[str, Any]:
    data = {key: value for key, value in asdict(triplet).items() if value not in ((), {}, None)}
    for key in ("distractors", "ignore"):
        if key in data:
            data[key] = list(data[key])
    return data


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as output:
        output.write(text)
    os.replace(temporary, path)


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read a manifest; raises ConfigError naming the file and what is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such manifest") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not a JSON manifest ({error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise ConfigError(f"{path}: not a semantic-moments benchmark manifest (format {data.get('format') if isinstance(data, dict) else None!r})")
    root = (path.parent / data["root"]).resolve() if data.get("root") else path.parent.resolve()
    try:
        triplets = tuple(
            TripletEntry(
                id=str(item.get("id", f"t{index:04d}")), category=str(item.get("category", "all")),
                reference=item["reference"], positive=item["positive"], negative=item["negative"],
                distractors=tuple(item.get("distractors", ())), ignore=tuple(item.get("ignore", ())),
                notes=item.get("notes", {}),
            )
            for index, item in enumerate(data.get("triplets", []))
        )
        clips = tuple(LabelledClip(c["path"], str(c["class"]), str(c.get("actor", ""))) for c in data.get("clips", []))
    except (KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"{path}: malformed manifest entry (missing {error})") from None
    if not triplets and not clips:
        raise ConfigError(f"{path}: manifest has neither triplets nor labelled clips")
    return Manifest(str(data.get("name", path.stem)), str(data.get("kind", "real")), root, triplets,
                    tuple(data.get("distractors", ())), clips, path)


# -- builders ---------------------------------------------------------------------------------------------


def read_labels(labels_csv: Path, actor_separator: str = "|") -> list[LabelledClip]:
    """``path,class,actor_or_source[,...]`` rows; the actor is the part before ``actor_separator``
    (``signer10|signingsavvy`` -> ``signer10``)."""
    from ..files import read_csv_rows

    rows = read_csv_rows(labels_csv, ("path", "class"))
    actor_column = "actor_or_source" if "actor_or_source" in rows[0] else "actor"
    if actor_column not in rows[0]:
        raise ConfigError(f"{labels_csv}: needs columns path,class,actor_or_source (missing actor_or_source)")
    return [LabelledClip(row["path"], row["class"], row[actor_column].split(actor_separator)[0]) for row in rows]


def build_from_labels(
    labels_csv: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    name: str | None = None,
    path_filter: Callable[[str], bool] | None = None,
    mirror_asymmetric: Sequence[str] | None = None,
) -> Manifest:
    """A SimMotion-Real-style manifest from labelled clips.

    Every clip that has both becomes a reference: positive = same class, different actor; hard
    negative = same actor, different class (drawn with ``seed``). The category is the clip path's
    first folder (the dataset). Distractors are all clips of other
    classes; other clips of the reference's class are also correct answers, so they are ``ignore``d
    (neither rewarded nor counted against). ``clips`` keeps the labels for kNN.

    ``mirror_asymmetric`` (a list of class names, possibly empty) adds a left-right mirrored twin
    ``PATH#hflip`` of every clip, by the same actor: a twin of a listed class (a motion that has a
    side, like a one-arm raise) is a new class ``CLASS (mirrored)``, a twin of any other class keeps
    its class. It tests whether a method tells a motion from its mirror image.
    """
    labels_csv = Path(labels_csv)
    root = Path(root) if root else labels_csv.parent
    listed = [clip for clip in read_labels(labels_csv) if path_filter is None or path_filter(clip.path)]
    clips = [clip for clip in listed if (root / clip.path).exists()]
    if len(clips) < 3:
        missing = [clip.path for clip in listed if clip not in clips]
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ConfigError(f"{labels_csv}: fewer than 3 labelled clips found under {root}"
                          + (f" ({len(missing)} listed paths are not there: {shown}; if the paths are relative to "
                             "another folder, give it with --root)" if missing else ""))
    if mirror_asymmetric is not None:
        sided = set(mirror_asymmetric)
        unknown = sided - {clip.label for clip in clips}
        if unknown:
            raise ConfigError(f"{labels_csv}: no clips of the class(es) {sorted(unknown)} to mirror")
        clips += [LabelledClip(clip.path + MIRROR, f"{clip.label} (mirrored)" if clip.label in sided else clip.label,
                               clip.actor) for clip in clips]
    rng = np.random.default_rng(seed)
    triplets = []
    for clip in clips:
        positives = [other for other in clips if other.label == clip.label and other.actor != clip.actor]
        negatives = [other for other in clips if other.actor == clip.actor and other.label != clip.label]
        if not positives or not negatives:
            continue
        positive = positives[int(rng.integers(len(positives)))]
        negative = negatives[int(rng.integers(len(negatives)))]
        same_class = tuple(o.path for o in clips if o.label == clip.label and o.path not in (clip.path, positive.path))
        triplets.append(TripletEntry(
            id=Path(clip.path).stem, category=Path(clip.path).parts[0] if len(Path(clip.path).parts) > 1 else "real",
            reference=clip.path, positive=positive.path,
            negative=negative.path, ignore=same_class,
        ))
    if not triplets:
        raise ConfigError(f"{labels_csv}: no clip has both a same-class/other-actor and a same-actor/other-class partner")
    all_paths = tuple(clip.path for clip in clips)
    folders = {Path(clip.path).parts[0] for clip in clips if len(Path(clip.path).parts) > 1}
    default_name = folders.pop() if len(folders) == 1 else labels_csv.parent.name  # the dataset's own folder
    default_name += "-mirrored" if mirror_asymmetric is not None else ""
    return Manifest(name or default_name, "real", root.resolve(), tuple(triplets), all_paths, tuple(clips))


def build_from_triplet_csv(
    triplets_csv: str | os.PathLike[str],
    distractor_folder: str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> Manifest:
    """A manifest from ``reference,positive,negative[,category]`` rows (paths relative to the CSV)
    plus every video under ``distractor_folder`` as the shared distractor pool."""
    triplets_csv = Path(triplets_csv)
    root = triplets_csv.parent.resolve()
    from ..files import read_csv_rows

    rows = read_csv_rows(triplets_csv, ("reference", "positive", "negative"), "triplets file")
    triplets = tuple(TripletEntry(f"t{index:04d}", row.get("category") or "all", row["reference"], row["positive"],
                                  row["negative"]) for index, row in enumerate(rows))
    distractors: tuple[str, ...] = ()
    if distractor_folder:
        folder = Path(distractor_folder).resolve()
        distractors = tuple(os.path.relpath(path, root) for path in sorted(folder.rglob("*"))
                            if path.suffix.lower() in VIDEO_SUFFIXES)
    return Manifest(name or triplets_csv.stem, "real", root, triplets, distractors)


def write_synthetic(
    out_dir: str | os.PathLike[str],
    count: int,
    seed: int = 0,
    size: int = 224,
    seconds: float = 5.0,
    fps: float = 16.0,
    progress: bool = False,
) -> Path:
    """Render ``count`` procedural triplets (five categories in turn) to H.264 files and a manifest.

    Deterministic for ``seed``. Returns the manifest path (``out_dir/manifest.json``).
    """
    from .synthetic import make_triplets, render

    out_dir = Path(out_dir)
    num_frames = max(2, int(round(seconds * fps)))
    triplets = make_triplets(count, seed=seed)
    entries = []
    iterator = enumerate(triplets)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=count, unit="triplet", desc="rendering")
    for index, triplet in iterator:
        paths = {}
        for role, (scene, motion) in (("reference", triplet.reference), ("positive", triplet.positive),
                                      ("negative", triplet.negative)):
            relative = f"{triplet.category}/{index:04d}_{role}.mp4"
            if not (out_dir / relative).exists():
                write_video(out_dir / relative, render(scene, motion, num_frames, size), fps=fps)
            paths[role] = relative
        entries.append(TripletEntry(f"{index:04d}", triplet.category, paths["reference"], paths["positive"],
                                    paths["negative"], notes=dict(triplet.describe)))
    manifest = Manifest(f"synthetic-seed{seed}", "synthetic", out_dir.resolve(), tuple(entries))
    return manifest.save(out_dir / "manifest.json")
