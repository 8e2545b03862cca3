"""One field of a settings object, declared once: its type, default, range and hint together.

A frozen settings dataclass declares each field with :func:`setting`; the config reader
(:mod:`edgekit.daemon.config`) reads a TOML table against these declarations, so a field's
default, its valid range and the hint in its error message cannot drift apart. The checks
that involve two fields (release below enter, k at most n) stay in the reader, next to the
section they belong to.

Why not pydantic or cattrs: every message must name its key and say what to write, all
problems are reported at once, cross-field checks run even when another field is wrong, and a
secret is never echoed. Those libraries' messages and their stop-at-the-first-failing-validator
model would have to be replaced message by message, for no gain on a table this size; this
module needs nothing beyond the standard library, on every Pi.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

KINDS = ("str", "topic", "file", "path", "int", "float", "bool", "choice", "custom")


@dataclass(frozen=True)
class Spec:
    """How one field is written in the config and what it may hold.

    ``hint`` completes "must be ..." and "is required: ...": what to write, with an example.
    """

    hint: str
    kind: str = "str"  # one of KINDS; "custom": the section's reader handles it
    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False  # lo itself is not allowed
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None  # a callable: looked up when needed
    extra: str = ""  # after the choices: '"a" or "b"; <extra>, got ...'
    required: bool = False
    secret: bool = False  # never shown: not in messages, not in repr (so not in logs)
    false_is_none: bool = False  # TOML has no null: false turns the feature off

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; one of {KINDS}")

    def options(self) -> tuple[str, ...]:
        return tuple(self.choices() if callable(self.choices) else self.choices or ())


def setting(default: Any = dataclasses.MISSING, *, hint: str, kind: str | None = None, **spec) -> Any:
    """A dataclass field with its :class:`Spec`. No ``default``: the key is required.

    ``kind`` defaults from the default's type (bool, int, float, else str).
    """
    if kind is None:
        kind = {bool: "bool", int: "int", float: "float"}.get(type(default), "str")
    required = default is dataclasses.MISSING
    s = Spec(hint, kind, required=required, **spec)
    return dataclasses.field(default=default, repr=not s.secret, metadata={"spec": s})


def spec_of(field: dataclasses.Field) -> Spec | None:
    return field.metadata.get("spec")


def specs(cls) -> dict[str, Spec]:
    """Field name -> Spec, in declaration order, for the fields that have one."""
    return {f.name: s for f in dataclasses.fields(cls) if (s := spec_of(f)) is not None}
