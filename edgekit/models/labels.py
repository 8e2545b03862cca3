"""Class names: YAMNet's class-map CSV, a labels .txt, or the file embedded in the model."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from edgekit.errors import LabelsError
from edgekit.models.tflite import Graph, read_associated_file


def parse_labels(text: str, source: str = "labels") -> tuple[str, ...]:
    lines = [ln.rstrip("\r") for ln in text.splitlines()]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise LabelsError(f"{source}: no labels in the file")
    header = lines[0].lower().replace(" ", "")
    if "display_name" in header and "," in header:
        # YAMNet's class map: index,mid,display_name (names may be quoted and hold commas).
        rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
        try:
            by_index = {int(r["index"]): r["display_name"] for r in rows} if "index" in rows[0] else None
        except (ValueError, KeyError, TypeError):
            raise LabelsError(f"{source}: a row has a bad index; expected index,mid,display_name") from None
        if by_index is None:
            return tuple(r["display_name"] for r in rows)
        if sorted(by_index) != list(range(len(by_index))):
            raise LabelsError(f"{source}: class indices are not 0..{len(by_index) - 1} without gaps")
        return tuple(by_index[i] for i in range(len(by_index)))
    # pycoral's format "N  label" when every line is numbered, else one label per line.
    numbered = [ln.split(maxsplit=1) for ln in lines]
    if all(len(p) == 2 and p[0].rstrip(":").isdigit() for p in numbered):
        by_index = {int(p[0].rstrip(":")): p[1].strip() for p in numbered}
        size = max(by_index) + 1
        return tuple(by_index.get(i, f"class {i}") for i in range(size))
    return tuple(ln.strip() for ln in lines)


def load_labels(path: str | Path) -> tuple[str, ...]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LabelsError(f"{p}: no such labels file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelsError(f"{p}: cannot read the labels file ({exc})") from None
    return parse_labels(text, str(p))


def embedded_labels(graph: Graph, data: bytes) -> tuple[str, ...] | None:
    """The labels file TFLite metadata zipped onto the model, if there is one."""
    for name in graph.associated_files:
        if name.lower().endswith(".txt") and "label" in name.lower():
            raw = read_associated_file(data, name)
            if raw:
                try:
                    return parse_labels(raw.decode("utf-8"), name)
                except (UnicodeDecodeError, LabelsError):
                    return None
    return None


def find_sidecar_labels(model_path: Path) -> Path | None:
    """A class map next to the model, as users keep them (yamnet_class_map.csv, labels.txt)."""
    stem = model_path.stem.removesuffix("_edgetpu")
    family = stem.split("_")[0]
    for name in (f"{stem}_labels.txt", f"{stem}.txt", f"{family}_class_map.csv", f"{family}_labels.txt",
                 "imagenet_labels.txt" if family == "mobilenet" else "", "labels.txt"):
        if name and (model_path.parent / name).is_file():
            return model_path.parent / name
    return None


# Class maps known by their length. A model without metadata whose output has this many classes
# (YAMNet copied or converted under another name, an ImageNet classifier) uses the one that
# `edgekit models pull` put in a model directory.
KNOWN_CLASS_MAPS = {521: "yamnet_class_map.csv", 1001: "imagenet_labels.txt"}


def output_classes(graph: Graph) -> int:
    """How many scores the model's (first) output holds."""
    return graph.output_tensors()[0].elements if graph.outputs else 0


def model_labels(path: Path, graph: Graph, data: bytes, override: str | Path | None = None,
                 dirs: list[Path] | None = None) -> tuple[tuple[str, ...] | None, str]:
    """A model's class names and where they came from, in the one order every command uses:
    a labels file the user names, the file embedded in the model's metadata, a class map beside
    it, then a known class map of the model's length (:data:`KNOWN_CLASS_MAPS`) beside it or in
    the model directories.

    Returns ``(None, why)`` when there are none; a named file that cannot be read raises, and so
    does a file whose length is not the model's.
    """
    from edgekit.models.paths import model_dirs

    path = Path(path)
    classes = output_classes(graph)
    if override is not None:
        return _fit(load_labels(override), classes, str(override)), str(override)
    names = embedded_labels(graph, data)
    if names is not None:
        return names, f"embedded in {path.name}"
    sidecar = find_sidecar_labels(path)
    if sidecar is not None:
        return _fit(load_labels(sidecar), classes, str(sidecar)), str(sidecar)
    known = KNOWN_CLASS_MAPS.get(classes)
    if known:
        for d in dict.fromkeys((path.parent, *(model_dirs() if dirs is None else dirs))):
            if (d / known).is_file():
                return _fit(load_labels(d / known), classes, str(d / known)), str(d / known)
    return None, f"{path.name} carries no labels and no class map lies beside it or in the model directories"


def report_labels(path: Path, graph: Graph, data: bytes, override: str | Path | None = None
                  ) -> tuple[tuple[str, ...] | None, str]:
    """:func:`model_labels` for reports (inspect, macs, bench): a ``--labels`` file that does not
    fit is the user's error and raises; a found one that does not fit only means no labels."""
    try:
        return model_labels(path, graph, data, override)
    except LabelsError as exc:
        if override is not None:
            raise
        return None, str(exc)


def _fit(names: tuple[str, ...], classes: int, source: str) -> tuple[str, ...]:
    if len(names) != classes:
        raise LabelsError(f"{source}: {len(names)} labels for a model with {classes} outputs; "
                          "pass the labels file that belongs to this model (--labels)")
    return names
