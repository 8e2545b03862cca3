"""Reference annotations: DCASE's TSV (``filename onset offset event_label``) and Audacity labels.

A bad row never stops an evaluation: it is skipped with a message in ``problems`` (with its line
number), and every other row is still used. Only a file that cannot be read at all raises
:class:`AnnotationError`.

DCASE TSVs come with or without the header line; a row holding just a file name lists a file
with no events. An Audacity label file (``start<TAB>end<TAB>label``, spectral-selection lines
starting with a backslash) annotates one recording: the one whose name has the label file's stem, or
the only recording given.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import AnnotationError


@dataclass(frozen=True)
class Annotation:
    filename: str  # as written in the file; matched to recordings by name (see match_files)
    onset: float  # seconds
    offset: float
    label: str


@dataclass(frozen=True)
class Annotations:
    events: tuple[Annotation, ...]
    files: tuple[str, ...]  # every file named, with or without events
    problems: tuple[str, ...]  # one readable line per skipped or changed row


def read_annotations(path: str | Path, recordings: list[str] | None = None) -> Annotations:
    """Read a DCASE TSV or an Audacity label file; ``recordings`` (audio paths) helps Audacity."""
    p = Path(path)
    if not p.is_file():
        raise AnnotationError(f"{p}: no such annotation file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = "\0"  # refused below, as binary
    except OSError as exc:
        raise AnnotationError(f"{p}: cannot read it ({exc.strerror or exc})") from None
    # Refused outright rather than read as "no events": each of these would score the whole
    # recording as background and report every real sound as a false alarm.
    if "\0" in text:
        raise AnnotationError(f"{p}: not a text file (binary data); give a tab-separated DCASE TSV "
                              f"(filename, onset, offset, event_label) or an Audacity label file")
    rows = [(i + 1, r) for i, r in enumerate(csv.reader(text.splitlines(), delimiter="\t"))]
    rows = [(n, [c.strip() for c in r]) for n, r in rows if any(c.strip() for c in r)]
    if not rows:
        raise AnnotationError(f"{p}: the annotation file is empty; write one line per event: "
                              f"filename<TAB>onset<TAB>offset<TAB>event_label (seconds)")
    if _separated_otherwise(rows):
        raise AnnotationError(f"{p}: the columns are separated by commas or semicolons, not tabs; save it as "
                              f"tab-separated (filename<TAB>onset<TAB>offset<TAB>event_label)")
    found = _audacity(p, rows, recordings) if _is_audacity(rows) else _dcase(p, rows)
    if not found.events and any(len(r) > 1 for _, r in rows):
        raise AnnotationError(f"{p}: no usable event in {len(rows)} lines (first problem: "
                              f"{found.problems[0] if found.problems else 'none'}); fix the file")
    return found


def _separated_otherwise(rows) -> bool:
    # A CSV read as TSV is one column per line, holding the commas: "a.wav,1.0,2.5,dog".
    single = [r[0] for _, r in rows if len(r) == 1]
    if not single or len(single) < len(rows):
        return False
    for sep in (",", ";"):
        cells = [line.split(sep) for line in single]
        if all(len(c) >= 3 for c in cells) and any(len(c) >= 3 and _number(c[1]) is not None for c in cells):
            return True
    return False


_SPECTRAL = ("", "\\")  # Audacity writes a label's frequency range on a line starting with a backslash


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _is_audacity(rows) -> bool:
    # Audacity: the first two columns of every non-spectral line are numbers; DCASE: a file name first.
    lines = [r for _, r in rows if r and r[0] not in _SPECTRAL]
    return bool(lines) and all(len(r) >= 2 and _number(r[0]) is not None and _number(r[1]) is not None
                               for r in lines)


def _dcase(p: Path, rows) -> Annotations:
    problems: list[str] = []
    events: list[Annotation] = []
    files: list[str] = []
    if rows and [c.lower() for c in rows[0][1][:4]] == ["filename", "onset", "offset", "event_label"]:
        rows = rows[1:]
    for n, r in rows:
        where = f"{p.name}:{n}"
        name = r[0]
        if name and name not in files:
            files.append(name)
        if len(r) == 1 or all(c == "" for c in r[1:]):
            continue  # a file with no events
        if len(r) < 4 or not name:
            problems.append(f"{where}: expected 4 tab-separated columns (filename, onset, offset, "
                            f"event_label), got {len(r)}; row skipped")
            continue
        _add(events, problems, where, name, r[1], r[2], r[3])
    return _finish(p, events, files, problems)


def _audacity(p: Path, rows, recordings: list[str] | None) -> Annotations:
    names = [Path(r).name for r in recordings or []]
    match = [n for n in names if Path(n).stem == p.stem]
    if match:
        name = match[0]
    elif len(names) == 1:
        name = names[0]
    else:
        raise AnnotationError(
            f"{p}: an Audacity label file annotates one recording; name it after the recording "
            f"(e.g. kitchen.txt for kitchen.wav) or give only that recording"
        )
    problems: list[str] = []
    events: list[Annotation] = []
    for n, r in rows:
        if r[0] in _SPECTRAL:  # spectral selection line (low/high frequency) of the label above
            continue
        _add(events, problems, f"{p.name}:{n}", name, r[0], r[1], r[2] if len(r) > 2 else "")
    return _finish(p, events, [name], problems)


def _add(events, problems, where, name, onset_s, offset_s, label) -> None:
    onset, offset = _number(onset_s), _number(offset_s)
    if onset is None or offset is None:
        problems.append(f"{where}: onset {onset_s!r} / offset {offset_s!r} are not numbers of seconds; row skipped")
    elif not label:
        problems.append(f"{where}: no event label; row skipped")
    elif onset < 0:
        problems.append(f"{where}: negative onset {onset} s; row skipped")
    elif offset <= onset:
        problems.append(f"{where}: offset {offset} s is not after onset {onset} s; row skipped")
    else:
        events.append(Annotation(name, onset, offset, label))


def _finish(p: Path, events: list[Annotation], files: list[str], problems: list[str]) -> Annotations:
    # Overlapping events of one label in one file are one sound as far as matching goes: merged,
    # so one detection cannot be owed twice.
    merged: list[Annotation] = []
    for e in sorted(events, key=lambda e: (e.filename, e.label, e.onset)):
        last = merged[-1] if merged else None
        if last and last.filename == e.filename and last.label == e.label and e.onset < last.offset:
            problems.append(f"{p.name}: {e.filename}: {e.label} events at {last.onset:g}-{last.offset:g} s and "
                            f"{e.onset:g}-{e.offset:g} s overlap; merged into one")
            merged[-1] = Annotation(e.filename, last.onset, max(last.offset, e.offset), e.label)
        else:
            merged.append(e)
    if not files and not merged:
        problems.append(f"{p.name}: no annotations in the file")
    return Annotations(tuple(sorted(merged, key=lambda e: (e.filename, e.onset))), tuple(files), tuple(problems))


def match_files(annotations: Annotations, recordings: list[str]) -> tuple[dict[str, str], list[str]]:
    """Annotated file name -> recording path, by relative path or by base name; plus problems.

    An annotated file with no recording is reported (its events are skipped); a recording that
    no annotation names is evaluated as having no events, with a note.
    """
    problems: list[str] = []
    by_name: dict[str, list[str]] = {}
    for r in recordings:
        by_name.setdefault(Path(r).name, []).append(r)
    found: dict[str, str] = {}
    for name in annotations.files:
        exact = [r for r in recordings if r == name or r.endswith("/" + name)]
        cands = exact or by_name.get(Path(name).name, [])
        if len(cands) == 1:
            found[name] = cands[0]
        elif not cands:
            n = sum(e.filename == name for e in annotations.events)
            problems.append(f"annotated file {name} is not among the recordings given; its {n} events are skipped")
        else:
            problems.append(f"annotated file {name} matches several recordings ({', '.join(cands)}); skipped")
    used = set(found.values())
    for r in recordings:
        if r not in used:
            problems.append(f"{r}: no annotations name it; evaluated as background (no events)")
            found[r] = r
    return found, problems
