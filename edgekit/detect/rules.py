"""A detection rule: which labels to watch and how their scores become start and end events.

Only detection lives here. What the daemon does when a rule fires (a GPIO pin, MQTT) is
:class:`edgekit.actions.settings.Rule`, which extends this one; the detector never sees it.
Each field's range and hint are declared once, with the field (:mod:`edgekit.schema`), and the
config reader checks TOML against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from edgekit.schema import setting

SMOOTHING = ("k_of_n", "mean", "none")
_SCORE = "a number between 0 and 1, e.g. {}"


@dataclass(frozen=True)
class Rule:
    name: str = setting(hint='a short name of letters, digits, "_" or "-", e.g. "smoke_alarm"')
    # Resolved display names of the model's labels (groups expanded); never a learned sound.
    labels: tuple[str, ...] = setting((), hint='a list of label or group names, e.g. labels = ["alarm"]', kind="custom")
    # Smoothed score that starts an event, and below which it ends (hysteresis: release <= enter).
    enter: float = setting(0.5, hint=_SCORE.format(0.5), lo=0, hi=1)
    release: float = setting(0.3, hint=_SCORE.format(0.3), lo=0, hi=1)
    # "k_of_n": k of the last n windows at enter; "mean": moving average over n; "none".
    smoothing: str = setting("k_of_n", hint="", kind="choice", choices=SMOOTHING)
    k: int = setting(1, hint="a whole number of windows, 1 or more, e.g. 2", lo=1)
    n: int = setting(1, hint="a whole number of windows between 1 and 100, e.g. 3", lo=1, hi=100)
    # Seconds above enter before a start is emitted.
    min_duration: float = setting(0.0, hint="a number of seconds between 0 and 3600, e.g. 1.0", lo=0, hi=3600)
    # Seconds the score must stay below release before the event ends: a beeping alarm's gaps
    # do not split it, so one alarm is one event (and no new start follows within hold).
    hold: float = setting(0.0, hint="a number of seconds between 0 and 3600, e.g. 5.0", lo=0, hi=3600)
    # Learned sounds (``edgekit sounds learn``), by name: a key of their own, so that a missing
    # sound is an error and never quietly resolves to a model label of the same letters.
    sounds: tuple[str, ...] = setting((), hint='a list of learned sound names, e.g. sounds = ["doorbell"]',
                                      kind="custom")


def rule_indices(rule: Rule, names: Sequence[str]) -> tuple[list[int], list[str]]:
    """(indices into ``names``, names not found) for what ``rule`` watches.

    ``names``: what each score stands for, the model's labels then the learned sounds
    (:func:`edgekit.detect.pipeline.labels_with_sounds`). A label is matched exactly, else without
    regard to case, at its first place (the model's); a sound exactly, at its last place (the
    sounds come after the labels, so a model label spelt the same is never taken for it).
    """
    exact = {name: i for i, name in enumerate(names)}  # last place wins
    first: dict[str, int] = {}
    folded: dict[str, int] = {}
    for i, name in enumerate(names):
        first.setdefault(name, i)
        folded.setdefault(name.casefold(), i)
    index: list[int] = []
    missing: list[str] = []
    for name in rule.labels:
        i = first.get(name, folded.get(name.casefold()))
        if i is None:
            missing.append(name)
        elif i not in index:
            index.append(i)
    for name in rule.sounds:
        i = exact.get(name)
        if i is None:
            missing.append(name)
        elif i not in index:
            index.append(i)
    return index, missing
