"""A generated folder with known duplicate groups in every tier, and its scoring.

Used by tests/integration/test_duplicates.py and bench/bench_duplicates.py. Each scene
gives an original photo, byte copies (identical), saves of it at several JPEG
qualities, resized, cropped, turned, tilted and in other formats (the same picture),
a burst of shots seconds apart (similar shots), and a look-alike taken days later
that must not join any group. Each document is written as .txt, .md (with a heading),
.docx and .pdf (the same document) plus a lightly edited version, next to a look-alike
document on the same topic that must not join.

Every file gets a label (family, shot): the score counts, per tier, the pairs of
labels a group puts together that should be (recall) or should not be (precision).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.nasty import docx_bytes, minimal_pdf

DAY = 86400.0
BASE_TIME = 1_700_000_000.0


@dataclasses.dataclass
class Truth:
    label: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)  # path -> (family, shot)
    identical: list[set[str]] = dataclasses.field(default_factory=list)  # groups of paths (same bytes)
    resaved: list[set[str]] = dataclasses.field(default_factory=list)  # paths of one picture, any form
    burst: list[set[tuple[str, str]]] = dataclasses.field(default_factory=list)  # labels of one burst
    document: list[set[str]] = dataclasses.field(default_factory=list)  # paths of one document, any form
    lookalikes: list[str] = dataclasses.field(default_factory=list)


def scene(rng: np.random.Generator, size: tuple[int, int] = (480, 360), palette: np.ndarray | None = None,
          shapes: list[tuple[Any, ...]] | None = None) -> tuple[Any, np.ndarray, list[tuple[Any, ...]]]:
    """A photo-like picture: a smooth coloured field and a few shapes. Returns (image, palette, shapes)."""
    from PIL import Image, ImageDraw

    palette = rng.integers(0, 256, (3, 4, 3)) if palette is None else palette
    if shapes is None:
        shapes = []
        for _ in range(7):
            x, y = int(rng.integers(0, size[0] - 60)), int(rng.integers(0, size[1] - 60))
            w, h = int(rng.integers(30, 160)), int(rng.integers(30, 160))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            shapes.append(("ellipse" if rng.random() < 0.5 else "rectangle", x, y, w, h, colour))
    field = Image.fromarray(palette.astype(np.uint8)).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(field)
    for kind, x, y, w, h, colour in shapes:
        getattr(draw, kind)((x, y, x + w, y + h), fill=colour)
    return field, palette, shapes


def _burst_shot(palette: np.ndarray, shapes: list[tuple[Any, ...]], rng: np.random.Generator, k: int) -> Any:
    """The same scene a moment later: the subject (the last two shapes) moved, the camera
    moved a little, light noise."""
    from PIL import ImageChops

    moved = [(kind, x + (25 * k if i >= len(shapes) - 2 else 0), y + (12 * k if i >= len(shapes) - 2 else 0), w, h, c)
             for i, (kind, x, y, w, h, c) in enumerate(shapes)]
    img, _, _ = scene(rng, palette=palette, shapes=moved)
    return _grain(ImageChops.offset(img, 5 * k, 3 * k), rng)


def _grain(img: Any, rng: np.random.Generator) -> Any:
    from PIL import Image

    noise = rng.normal(0, 6, (img.height, img.width, 3))
    return Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8))


def _set_time(path: Path, when: float) -> None:
    os.utime(path, (when, when))


def make_pictures(root: Path, scenes: int, seed: int, truth: Truth) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for s in range(scenes):
        fam = f"scene{s}"
        folder = root / "photos" / fam
        folder.mkdir(parents=True)
        when = BASE_TIME + s * 7 * DAY
        img, palette, shapes = scene(rng)
        img = _grain(img, rng)  # a camera's noise, as in its burst shots
        original = folder / "original.jpg"
        img.save(original, quality=92)
        _set_time(original, when)
        copies = {str(original)}
        for c in range(2 if s % 2 == 0 else 1):
            copy = root / "backup" / f"{fam}-copy{c}.jpg"
            copy.parent.mkdir(exist_ok=True)
            shutil.copy2(original, copy)
            copies.add(str(copy))
        truth.identical.append(copies)
        w, h = img.size
        variants = {
            "q75.jpg": img, "q50.jpg": img, "q30.jpg": img,
            "half.jpg": img.resize((w // 2, h // 2)), "quarter.png": img.resize((w // 4, h // 4)),
            "copy.webp": img, "crop.jpg": img.crop((w // 20, h // 20, w - w // 20, h - h // 20)),
            "turned.jpg": img.rotate(90, expand=True),
            "tilted.jpg": img.rotate(2, resample=Image.Resampling.BICUBIC).crop((8, 8, w - 8, h - 8)),
        }
        family = set(copies)
        for name, picture in variants.items():
            path = folder / f"saved-{name}"
            quality = int(name[1:3]) if name[:1] == "q" and name[1:3].isdigit() else 85
            picture.save(path, quality=quality)
            _set_time(path, when + 30 * DAY)  # saved again a month later
            family.add(str(path))
        truth.resaved.append(family)
        for p in family:
            truth.label[p] = (fam, "shot0")
        burst = {(fam, "shot0")}
        for k in range(1, 4):
            path = folder / f"burst-{k}.jpg"
            _burst_shot(palette, shapes, rng, k).save(path, quality=90)
            _set_time(path, when + 2 * k)
            truth.label[str(path)] = (fam, f"shot{k}")
            burst.add((fam, f"shot{k}"))
        truth.burst.append(burst)
        twin, _, _ = scene(rng, palette=palette)  # same colours and kind of shapes, another picture
        path = folder / "lookalike.jpg"
        twin.save(path, quality=92)
        _set_time(path, when + 3 * DAY)
        truth.label[str(path)] = (fam, "lookalike")
        truth.lookalikes.append(str(path))


_SYLLABLES = ["ka", "lo", "mi", "ren", "sto", "dar", "vel", "qui", "nor", "bel", "tas", "ur", "fen", "gol", "ith", "pra"]


def _vocabulary(rng: random.Random, n: int = 1500) -> list[str]:
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def _sentences(rng: random.Random, vocab: list[str], n: int) -> list[str]:
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(8, 14))).capitalize() + "." for _ in range(n)]


def make_documents(root: Path, documents: int, seed: int, truth: Truth) -> None:
    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    folder = root / "documents"
    folder.mkdir(parents=True)
    for d in range(documents):
        fam = f"doc{d}"
        topic = rng.sample(vocab, 200)  # a document and its look-alike share a topic's words
        lines = _sentences(rng, topic, 40)
        family: set[str] = set()

        def put(name: str, data: bytes, when: float, fam: str = fam, family: set[str] = family) -> None:
            path = folder / name
            path.write_bytes(data)
            _set_time(path, when)
            family.add(str(path))
            truth.label[str(path)] = (fam, "text")

        when = BASE_TIME + d * 3 * DAY
        put(f"{fam}.txt", "\n".join(lines).encode(), when)
        put(f"{fam}.md", ("# Report " + fam + "\n\n" + "\n\n".join(lines)).encode(), when + 60)
        put(f"{fam}.docx", docx_bytes([("", line) for line in lines]), when + 120)
        put(f"{fam}.pdf", minimal_pdf(lines), when + 180)
        edited = list(lines)
        for i in rng.sample(range(len(lines)), 4):  # one sentence in ten rewritten
            edited[i] = _sentences(rng, topic, 1)[0]
        put(f"{fam}-edited.txt", "\n".join(edited).encode(), when + 5 * DAY)
        truth.document.append(family)
        other = folder / f"{fam}-other-report.txt"
        other.write_text("\n".join(_sentences(rng, topic, 40)))
        _set_time(other, when + DAY)
        truth.label[str(other)] = (fam, "lookalike")
        truth.lookalikes.append(str(other))


def make_duplicate_set(root: Path, scenes: int = 3, documents: int = 2, seed: int = 7) -> Truth:
    truth = Truth()
    make_pictures(root, scenes, seed, truth)
    make_documents(root, documents, seed, truth)
    return truth


# ----------------------------------------------------------------------------- scoring
def _pairs(items: set[Any]) -> set[frozenset[Any]]:
    return {frozenset(p) for p in itertools.combinations(sorted(items, key=str), 2)}


def score(groups: list[Any], truth: Truth) -> dict[str, dict[str, float]]:
    """Precision and recall per tier, counted over pairs.

    identical: pairs of paths. resaved and document: pairs of distinct contents, since a
    later tier shows one file per set of identical files. burst: pairs of shots.
    """
    expected: dict[str, set[frozenset[Any]]] = {"identical": set(), "resaved": set(), "burst": set(), "document": set()}
    hash_of: dict[str, str] = {}
    for g in groups:
        for m in g.members:
            hash_of[m.path] = m.content_hash
    for group in truth.identical:
        expected["identical"] |= _pairs(group)
    for tier, families in (("resaved", truth.resaved), ("document", truth.document)):
        for fam in families:
            expected[tier] |= {p for p in _pairs({_content(path) for path in fam}) if len(p) == 2}
    for shots in truth.burst:
        expected["burst"] |= _pairs(shots)
    found: dict[str, set[frozenset[Any]]] = {t: set() for t in expected}
    for g in groups:
        paths = {m.path for m in g.members}
        if g.tier == "identical":
            found["identical"] |= _pairs(paths)
        elif g.tier == "burst":
            found["burst"] |= {p for p in _pairs({truth.label.get(p, ("?", p)) for p in paths}) if len(p) == 2}
        else:
            found[g.tier] |= {p for p in _pairs({_content(p) for p in paths}) if len(p) == 2}
    out = {}
    for tier, wanted in expected.items():
        hit = len(found[tier] & wanted)
        out[tier] = {
            "expected_pairs": len(wanted),
            "found_pairs": len(found[tier]),
            "precision": round(hit / len(found[tier]), 3) if found[tier] else 1.0,
            "recall": round(hit / len(wanted), 3) if wanted else 1.0,
        }
    lookalikes = set(truth.lookalikes)
    out["lookalikes_grouped"] = {"count": sum(1 for g in groups for m in g.members if m.path in lookalikes)}
    return out


def _content(path: str) -> str:
    """A file's content (bytes digest): copies of the same bytes count as one."""
    import hashlib

    return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()
