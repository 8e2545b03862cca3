"""Typed reads of one TOML table against the field declarations of a settings class.

A bad value is reported (``key: must be <hint>, got <value>``) and :data:`BAD` returned; a
missing one gives :data:`MISSING`, which :func:`build` turns into the field's default, so one
pass finds every problem. A secret field's value is never shown, whatever its type.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Sequence

from edgekit.schema import Spec, specs

BAD = object()  # a value that was reported; the default stands in so parsing goes on
MISSING = object()


def names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def default(cls, name: str):
    return next(f.default for f in fields(cls) if f.name == name)


def or_default(value, fallback):
    return fallback if value is MISSING else value


def build(cls, **values):
    return cls(**{k: v for k, v in values.items() if v is not MISSING and v is not BAD})


def show(value: Any, secret: bool = False) -> str:
    """A value as the user wrote it in TOML; for a secret, only what kind of value it is."""
    if secret:
        if isinstance(value, str):
            return "an empty string" if not value.strip() else "a string"
        return ("a table" if isinstance(value, dict) else "a list" if isinstance(value, list)
                else "true or false" if isinstance(value, bool)
                else "a number" if isinstance(value, (int, float)) else "a date or time")
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)  # dates and times


def suggest_key(name: str, known: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return close[0]
    starts = [k for k in known if k.startswith(name) or name.startswith(k) or name in k]
    return starts[0] if starts else None


class Table:
    """One TOML table; ``cls`` (a settings class) gives its known keys and their declarations."""

    def __init__(self, data: Any, where: str, problems: list[str], cls=None, *, free: bool = False,
                 sections: dict[str, Any] | None = None):
        self.data = data if isinstance(data, dict) else {}
        self.where, self.problems, self.free = where, problems, free
        self.specs: dict[str, Spec] = specs(cls) if cls is not None else {}
        self.known = names(cls) if cls is not None else tuple(sections or ())
        self.sections = sections or {}  # at the top: section name -> its settings class
        self.seen: set[str] = set()
        self.note = ""  # e.g. ' (rule "smoke")': "rules[3]" alone is hard to find in a long file

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def bad(self, name: str, message: str):
        self.problems.append(f"{self.key(name)}{self.note}: {message}")
        return BAD

    def show(self, name: str, value: Any) -> str:
        spec = self.specs.get(name)
        return show(value, secret=spec is not None and spec.secret)

    def get(self, name: str):
        self.seen.add(name)
        return self.data.get(name, MISSING)

    def table(self, name: str, cls=None, optional: bool = False, free: bool = False) -> "Table | None":
        value = self.get(name)
        if value is MISSING and optional:
            return None
        if value is not MISSING and not isinstance(value, dict):
            self.bad(name, f"must be a table: write [{name}] on a line of its own, then its keys")
            value = {}
        return Table(value, name, self.problems, cls, free=free)

    def sub(self, name: str, cls, value: dict) -> "Table":
        """A table nested in this one (``rules[0].gpio``), keeping this one's note."""
        t = Table(value, self.key(name), self.problems, cls)
        t.note = self.note
        return t

    def finish(self) -> None:
        """Unknown keys are errors: a typo would otherwise silently keep the default."""
        if self.free:
            return  # [groups]: every key is a group name
        for name in self.data:
            if name in self.seen:
                continue
            if self.where:
                close = suggest_key(name, self.known)
                hint = f"did you mean {self.key(close)}?" if close else "known keys: " + ", ".join(self.known)
                self.problems.append(f"unknown key {self.key(name)}{self.note}; {hint}")
                continue
            # At the top a key may be one that belongs under a section header.
            close = suggest_key(name, self.known)
            owner = next((f"{s}.{name}" for s, cls in self.sections.items() if cls and name in names(cls)), None)
            hint = (f"did you mean {owner}? put it under [{owner.split('.')[0]}]" if owner else
                    f"did you mean [{close}]?" if close else
                    "sections are " + ", ".join(f"[{s}]" for s in self.known))
            self.problems.append(f"unknown section [{name}]; {hint}" if isinstance(self.data[name], dict)
                                 else f"unknown key {name}; {hint}")

    # --- reads by declaration -----------------------------------------------------------------

    def read_all(self, base: Path, then: dict[str, Callable[[Any], Any]] | None = None,
                 into: dict[str, Any] | None = None) -> dict[str, Any]:
        """Every declared field, in declaration order, so problems come out in the file's terms.

        ``then[name]`` runs right after that field is read, with its value, and returns the
        value to keep: the place for checks that need it or an earlier field (filled into
        ``into`` as the fields are read). A "custom" field is read by its ``then`` alone.
        """
        then = then or {}
        values: dict[str, Any] = {} if into is None else into
        for name, spec in self.specs.items():
            if spec.kind == "custom" and name not in then:
                raise TypeError(f"{self.where or 'top'}.{name}: a custom field needs a reader")
            value = MISSING if spec.kind == "custom" else self.read(name, base)
            values[name] = then[name](value) if name in then else value
        return values

    def read(self, name: str, base: Path | None = None):
        s = self.specs[name]
        if s.kind in ("int", "float"):
            if s.false_is_none and self.data.get(name) is False:
                self.seen.add(name)
                return None  # TOML has no null: false turns it off
            return self.number(name, s.hint, s.lo, s.hi, integer=s.kind == "int", open_lo=s.open_lo)
        if s.kind == "bool":
            return self.boolean(name)
        if s.kind == "choice":
            return self.choice(name, s.options(), s.extra)
        value = self.string(name, s.hint, required=s.required)
        if s.kind == "topic" and isinstance(value, str) and any(c in value for c in "/+# "):
            return self.bad(name, f"must be {s.hint}, got {self.show(name, value)}")
        if s.kind == "file" and isinstance(value, str):
            return self.existing_file(name, value, base or Path.cwd(), s.hint)
        if s.kind == "path" and isinstance(value, str):
            return str((base or Path.cwd()) / Path(value).expanduser())
        return value

    # --- typed reads ----------------------------------------------------------------------------

    def string(self, name: str, hint: str, required: bool = False):
        value = self.get(name)
        if value is MISSING:
            return self.bad(name, f"is required: {hint}") if required else MISSING
        if not isinstance(value, str) or not value.strip():
            return self.bad(name, f"must be {hint}, got {self.show(name, value)}")
        return value

    def choice(self, name: str, choices: Sequence[str], extra: str = ""):
        value = self.get(name)
        if value is MISSING:
            return MISSING
        if value not in choices:
            options = " or ".join(f'"{c}"' for c in choices)
            return self.bad(name, f"must be {options}{'; ' + extra if extra else ''}, got {self.show(name, value)}")
        return value

    def boolean(self, name: str):
        value = self.get(name)
        if value is MISSING or isinstance(value, bool):
            return value
        return self.bad(name, f"must be true or false (no quotes), got {self.show(name, value)}")

    def number(self, name: str, hint: str, lo: float | None, hi: float | None, integer: bool = False,
               open_lo: bool = False):
        value = self.get(name)
        if value is MISSING:
            return MISSING
        ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and (lo is None or (value > lo if open_lo else value >= lo))
        if not (ok and (hi is None or value <= hi)):
            return self.bad(name, f"must be {hint}, got {self.show(name, value)}")
        return value if integer else float(value)

    def existing_file(self, name: str, value: str, base: Path, hint: str):
        path = base / Path(value).expanduser()
        if not path.is_file():
            return self.bad(name, f"no such file {path}; give {hint}")
        return str(path)
