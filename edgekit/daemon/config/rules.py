"""[groups] and [[rules]]: label names resolved against the model's, with suggestions, and the
checks between a rule's fields and between rules (names, pins)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Sequence

from edgekit.daemon.config.pins import bcm, pin_problem
from edgekit.daemon.config.reader import BAD, MISSING, Table, build, default, or_default, show
from edgekit.daemon.settings import GpioAction, Rule

_SLUG = re.compile(r"^[A-Za-z0-9_-]+$")


def groups(t: Table) -> dict[str, tuple[str, ...]]:
    found = {}
    for name in list(t.data):
        value = t.get(name)
        if not _strings(value) or not value:
            t.bad(name, f'must be a list of label names, e.g. {name} = ["Smoke detector, smoke alarm", "Fire alarm"]')
            continue
        found[name] = tuple(value)
    return found


def rules(value: Any, problems: list[str], names: "Names", base: Path) -> list[Rule]:
    if value is MISSING or value == []:
        problems.append('rules: no rules; add at least one [[rules]] table with a name and labels, e.g. '
                        'name = "smoke" and labels = ["Smoke detector, smoke alarm"]')
        return []
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        problems.append("rules: must be an array of tables: start each rule with [[rules]] (two brackets)")
        return []
    out, seen, pins = [], {}, {}
    for i, table in enumerate(value):
        t = Table(table, f"rules[{i}]", problems, Rule)
        rule = _rule(t, names, base)
        if rule.name:
            if rule.name.casefold() in seen:
                t.bad("name", f"the name is already taken by {seen[rule.name.casefold()]} (names are compared "
                              "without regard to case); give each rule its own name")
            seen.setdefault(rule.name.casefold(), f'rules[{i}] ("{rule.name}")')
        if rule.gpio is not None and (pin := bcm(rule.gpio.pin)) is not None:
            if pin in pins:
                t.bad("gpio.pin", f"GPIO{pin} is already driven by {pins[pin]}; give each rule its own pin")
            pins.setdefault(pin, f'rules[{i}] ("{rule.name}")' if rule.name else f"rules[{i}]")
        out.append(rule)
    return out


def _rule(t: Table, names: "Names", base: Path) -> Rule:
    def name(value):
        if isinstance(value, str):
            t.note = f' (rule "{value}")'
            if not _SLUG.match(value):
                return t.bad("name", f'must be letters, digits, "_" or "-" (it is used in MQTT topics), '
                                     f'e.g. "{_slugify(value)}"')
        return value

    def release(value):
        e = or_default(v.get("enter"), default(Rule, "enter"))
        r = or_default(value, default(Rule, "release"))
        if e is not BAD and r is not BAD and r > e:
            t.bad("release", f"must not be above enter ({e:g}): an event starts at enter and ends below release, "
                             f"e.g. release = {round(e * 0.6, 2):g}")
        return value

    def n(value):
        mode = v["smoothing"] if isinstance(v["smoothing"], str) else "k_of_n"
        if "k" in t.data and mode != "k_of_n":
            v["k"] = t.bad("k", f'only applies to smoothing = "k_of_n" (this rule has "{mode}"); remove it')
        if "n" in t.data and mode == "none":
            value = t.bad("n", 'has no effect with smoothing = "none"; remove it, or use "mean" or "k_of_n"')
        kk, nn = or_default(v["k"], default(Rule, "k")), or_default(value, default(Rule, "n"))
        if kk is not BAD and nn is not BAD and kk > nn:
            t.bad("k", f"must not exceed n ({nn}{', the default' if value is MISSING else ''}): an event starts "
                       f"when k of the last n windows reach enter, e.g. k = {kk} and n = {kk + 1}")
        return value

    def gpio(_):
        g = t.get("gpio")
        if g is MISSING:
            return None
        if not isinstance(g, dict):
            t.bad("gpio", f"must be {t.specs['gpio'].hint}")
            return None
        return _gpio_action(t.sub("gpio", GpioAction, g), base)

    v: dict[str, Any] = {}  # the hooks see the fields read before them
    t.read_all(base, then={"name": name, "labels": lambda _: _labels(t, names), "release": release, "n": n,
                           "gpio": gpio, "sounds": lambda _: _sounds(t, names)}, into=v)
    if "labels" not in t.data and "sounds" not in t.data:
        t.bad("labels", 'is required: the model\'s classes to watch, e.g. labels = ["Smoke detector, smoke alarm"] '
                        '(or name learned sounds in sounds = ["doorbell"])')
    t.finish()
    if not isinstance(v["name"], str):
        v["name"] = ""  # reported; the rule is still built so the checks between rules go on
    learned = [names.sounds[x] for x in v["sounds"] if not isinstance(names.sounds.get(x, ""), str)]
    if learned:
        # A rule that sets no enter for a custom sound uses the sound's calibrated threshold
        # (and a release below it); an explicit enter or release wins.
        if "enter" not in t.data:
            v["enter"] = min(snd.threshold for snd in learned)
        if "release" not in t.data:
            enter = v["enter"] if isinstance(v.get("enter"), float) else default(Rule, "enter")
            v["release"] = min(min(snd.release for snd in learned), enter)
    return build(Rule, **v)


def _labels(t: Table, names: "Names") -> tuple[str, ...]:
    raw = t.get("labels")
    hint = t.specs["labels"].hint
    if raw is MISSING:
        return ()  # a rule of learned sounds only; a rule with neither is reported by _rule
    if isinstance(raw, str):
        raw = [raw]  # one name is a list of one
    if not _strings(raw) or not raw:
        t.bad("labels", f"must be {hint}, got {show(raw)}")
        return ()
    resolved: list[str] = []
    for j, entry in enumerate(raw):
        if (why := names.learned_in_labels(entry)) is not None:
            t.bad(f"labels[{j}]", why)
            continue
        found = names.resolve(entry)
        if found is None:
            t.bad(f"labels[{j}]", names.unknown(entry, groups=True))
            continue
        resolved.extend(x for x in found if x not in resolved)
    return tuple(resolved)


def _sounds(t: Table, names: "Names") -> tuple[str, ...]:
    """Learned sounds by name: each must exist and be usable, or the config is refused."""
    raw = t.get("sounds")
    if raw is MISSING:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not _strings(raw) or not raw:
        t.bad("sounds", f"must be {t.specs['sounds'].hint}, got {show(raw)}")
        return ()
    out: list[str] = []
    for j, entry in enumerate(raw):
        found = names.sound(entry)
        if isinstance(found, str):
            t.bad(f"sounds[{j}]", found)
        elif entry not in out:
            out.append(entry)
    return tuple(out)


def _load_sound(name: str):
    """The learned sound ``name`` (read and checked completely), or why it cannot be used."""
    from edgekit.detect.sound_store import load_sound, sound_dirs
    from edgekit.errors import SoundError, SoundNotFoundError

    try:
        return load_sound(name)
    except SoundNotFoundError:
        return (f'no learned sound "{name}" (looked in {", ".join(map(str, sound_dirs()))}); teach it with '
                f"`edgekit sounds learn {name} --examples CLIPS` (for the service: `sudo edgekit sounds learn "
                f"{name} --service --examples CLIPS`), or take it out of the rule")
    except SoundError as exc:
        return f'learned sound "{name}" cannot be used: {exc}'


def _gpio_action(t: Table, base: Path) -> GpioAction | None:
    def pin(_):
        value = t.get("pin")
        if value is MISSING:
            return t.bad("pin", f"is required: {t.specs['pin'].hint}")
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if problem := pin_problem(value):
            return t.bad("pin", problem)
        return value

    def pulse(value):
        if "pulse_seconds" in t.data and t.data.get("mode", "level") == "level":
            t.bad("pulse_seconds", 'only applies to mode = "pulse"; add mode = "pulse" or remove it')
        return value

    v = t.read_all(base, then={"pin": pin, "pulse_seconds": pulse})
    t.finish()
    return None if v["pin"] is BAD else build(GpioAction, **v)


# --- label names ------------------------------------------------------------------------------


class Names:
    """Rule and group entries -> model display names: groups by exact name, labels case-folded.

    Learned sounds are named in a rule's ``sounds``, never in ``labels``: a name in ``labels``
    that is also a learned sound is refused with the fix (move it to ``sounds``, or write the
    model's label in its own case), so that a rule cannot mean the user's doorbell today and,
    once that sound is removed, YAMNet's "Doorbell" tomorrow without anyone being told.
    """

    def __init__(self, labels: Sequence[str] | None, groups: dict[str, tuple[str, ...]]):
        self.labels = tuple(labels) if labels is not None else None
        self.groups = groups
        self.folded = {}
        for name in self.labels or ():
            self.folded.setdefault(name.casefold(), name)
        self.sounds: dict[str, object] = {}  # name -> Sound, or the reason it cannot be used

    def sound(self, name: str):
        """The learned sound ``name``, or a message saying why it cannot be used (read once)."""
        from edgekit.detect.heads import check_name
        from edgekit.errors import SoundError

        if name not in self.sounds:
            try:
                check_name(name)
            except SoundError as exc:
                return str(exc)
            self.sounds[name] = _load_sound(name)
        return self.sounds[name]

    def learned_in_labels(self, entry: str) -> str | None:
        """Why ``entry`` (in ``labels``, or a group's member) may not stand there: it is a learned sound."""
        from edgekit.detect.sound_store import find_sound
        from edgekit.errors import SoundError

        if entry in self.groups:
            return None  # its members are checked on the group
        try:
            find_sound(entry)  # the name alone: whether the file is good is for sounds = [...]
        except SoundError:
            return None
        model = self.folded.get(entry.casefold()) if self.labels is not None else None
        other = f', or write the model\'s label as "{model}"' if model else ""
        return (f'"{entry}" is a learned sound: name it in sounds = ["{entry}"] (labels are the model\'s classes'
                f'{other})')

    def label(self, name: str) -> str | None:
        if self.labels is None:
            return name  # nothing to check against: taken as written
        return self.folded.get(name.casefold())

    def resolve(self, entry: str) -> tuple[str, ...] | None:
        if entry in self.groups:
            members = [self.label(m) for m in self.groups[entry]]
            return tuple(m for m in members if m is not None)  # bad members are reported on the group
        found = self.label(entry)
        return (found,) if found is not None else None

    def unknown(self, name: str, groups: bool) -> str:
        candidates = list(self.labels or ()) + (list(self.groups) if groups else [])
        close = suggest_labels(name, candidates)
        what = "label or group" if groups else "label"
        hint = ("did you mean " + " or ".join(f'"{c}"' for c in close) + "?") if close else \
            "use the display names of the model's class map (yamnet_class_map.csv)" + \
            (" or a group from [groups]" if groups else "")
        return f'unknown {what} "{name}"; {hint}'


def suggest_labels(name: str, labels: Sequence[str], n: int = 3) -> list[str]:
    """The closest real names, case-insensitive; each part of "Smoke detector, smoke alarm" counts."""
    aliases: dict[str, str] = {}
    for label in labels:
        aliases.setdefault(label.casefold(), label)
        for part in label.split(","):
            aliases.setdefault(part.strip().casefold(), label)
    key = name.strip().casefold()
    out: list[str] = []
    for hit in difflib.get_close_matches(key, list(aliases), n=n * 3, cutoff=0.7):
        if aliases[hit] not in out:
            out.append(aliases[hit])
    if not out and key:
        out = [label for label in labels if key in label.casefold()]
    return out[:n]


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def _slugify(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "rule"
