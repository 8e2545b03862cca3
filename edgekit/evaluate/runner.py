"""An evaluation: config + recordings + annotations -> per-rule metrics, with every problem reported.

Each recording goes once through the daemon's path (:func:`.replay.score_file`) with the config's
rules; a recording that cannot be used (unreadable, shorter than one window) is reported and the
others are still evaluated.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from edgekit.audio.files import audio_seconds
from edgekit.detect.rules import Rule, rule_indices
from edgekit.errors import AudioFileError, EvaluationError

from .annotations import Annotation, Annotations, match_files
from .metrics import WINDOW_SECONDS, Detection, RuleMetrics, rule_metrics
from .replay import Scores, detections, score_file


@dataclass
class Evaluation:
    rules: dict[str, RuleMetrics]
    labels: dict[str, str]  # rule -> annotation label
    files: dict[str, float]  # evaluated file name -> seconds
    problems: list[str]
    scores: dict[str, Scores] = field(default_factory=dict)
    detections: dict[str, list[Detection]] = field(default_factory=dict)  # per rule, all files
    reference: list[Annotation] = field(default_factory=list)
    psds: dict = field(default_factory=dict)  # scenario -> psds.Result (secondary; rules with events only)

    def as_dict(self) -> dict:
        from dataclasses import asdict

        from .psds import SCENARIOS

        rules = {name: {**m.as_dict(), "label": self.labels[name],
                        **{k: r.per_class.get(name) for k, r in self.psds.items()}}
                 for name, m in self.rules.items()}
        return {
            "rules": rules,
            "files": self.files,
            "problems": self.problems,
            "psds": {k: {"value": r.value, "thresholds": r.thresholds, **asdict(SCENARIOS[k])}
                     for k, r in self.psds.items()},
        }


def parse_map(items: Sequence[str] | None) -> dict[str, str]:
    """``["a=x,b=y", "c=z"]`` -> {a: x, b: y, c: z}."""
    out: dict[str, str] = {}
    for item in items or ():
        for part in item.split(","):
            if not part.strip():
                continue
            rule, sep, label = part.partition("=")
            if not sep or not rule.strip() or not label.strip():
                raise EvaluationError(f"--map {part!r}: write RULE=LABEL (e.g. smoke_alarm=smoke_alarm)")
            out[rule.strip()] = label.strip()
    return out


def rule_labels(rules: Sequence[Rule], labels: set[str], mapping: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    names = {r.name for r in rules}
    unknown = sorted(set(mapping) - names)
    if unknown:
        raise EvaluationError(f"--map names rules the config does not have: {', '.join(unknown)} "
                              f"(its rules: {', '.join(sorted(names))})")
    out = {r.name: mapping.get(r.name, r.name) for r in rules}
    problems = [f"rule {r}: no annotated event is labelled {lab!r}; only its false alarms are measured"
                + ("" if r in mapping else f" (use --map {r}=LABEL if its events go by another name)")
                for r, lab in out.items() if lab not in labels]
    for lab in sorted(labels - set(out.values())):
        problems.append(f"annotation label {lab!r} has no rule (rules: {', '.join(sorted(out))}); "
                        f"its events are not evaluated; use --map RULE={lab}")
    return out, problems


def model_for(config, hop: float | None = None):
    """The daemon's model, loaded as the daemon loads it (``hop``: another window hop)."""
    from edgekit.models.model import load_configured

    return load_configured(config.model, hop or config.audio.hop_seconds, embedding=bool(config.sounds))


def sounds_for(config, model) -> tuple:
    """The custom sounds the config's rules name, checked against the model (as the daemon does)."""
    from edgekit.detect.sound_store import load_sounds

    return load_sounds(config.sounds, model)


def labels_for(config, model) -> tuple[str, ...]:
    """What the detector's scores stand for: the model's labels, then the rules' custom sounds."""
    from edgekit.detect.pipeline import labels_with_sounds

    return labels_with_sounds(model.labels, sounds_for(config, model))


def _cache_key(path: str, model, config) -> str:
    st = Path(path).stat()
    key = f"v4|{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}|{model.path}|{model.params}|" \
          f"{config.model.frontend}|{config.audio.min_dbfs}|" \
          + "|".join(f"{n}:{Path(snd.path).stat().st_mtime_ns}" for n, snd in zip(config.sounds, sounds_for(config, model)))
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def scores_for(path: str, model, config, cache_dir: str | Path | None = None):
    """(scores, events of the config's rules) for one file; scores cached in ``cache_dir``."""
    from .replay import replay

    if cache_dir is not None:
        cached = Path(cache_dir) / f"{_cache_key(path, model, config)}.npz"
        if cached.is_file():
            s = Scores.load(cached)
            return s, replay(s, config.rules, labels_for(config, model))
    s, events = score_file(model, path, config.rules, config.model.frontend, config.audio.min_dbfs,
                           sounds_for(config, model))
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        s.save(cached)
    return s, events


def evaluate(config, model, annotations: Annotations, recordings: Sequence[str],
             mapping: dict[str, str] | None = None, onset_collar: float = 1.0,
             cache_dir: str | Path | None = None) -> Evaluation:
    if not config.rules:
        raise EvaluationError("the config has no [[rules]] to evaluate")
    problems = list(annotations.problems)
    labels, more = rule_labels(config.rules, {e.label for e in annotations.events}, mapping or {})
    problems += more
    found, more = match_files(annotations, list(recordings))
    problems += more
    ev = Evaluation({}, labels, {}, problems)
    per_rule: dict[str, list[Detection]] = {r.name: [] for r in config.rules}
    for name, path in found.items():
        try:
            seconds = audio_seconds(path)
            if seconds < WINDOW_SECONDS:
                raise AudioFileError(f"{path}: {seconds:.3f} s of audio is shorter than one "
                                     f"{WINDOW_SECONDS} s window; skipped")
            s, events = scores_for(path, model, config, cache_dir)
        except AudioFileError as exc:
            problems.append(str(exc).rstrip(";") + ("" if "skipped" in str(exc) else "; skipped"))
            continue
        late = [e for e in annotations.events if e.filename == name and e.onset >= s.duration]
        if late:
            problems.append(f"{name}: {len(late)} annotated events start after the recording ends "
                            f"({s.duration:.1f} s); they count as missed")
        ev.files[name] = s.duration
        ev.scores[name] = s
        for rule, dets in detections(events, config.rules, name, s.hop).items():
            per_rule[rule] += dets
    if not ev.files:
        raise EvaluationError("no recording could be evaluated:\n  " + "\n  ".join(problems))
    ev.reference = [e for e in annotations.events if e.filename in ev.files]
    ev.detections = per_rule
    for r in config.rules:
        ref = [e for e in ev.reference if e.label == labels[r.name]]
        ev.rules[r.name] = rule_metrics(ref, per_rule[r.name], ev.files, onset_collar)
    ev.psds = rule_psds(ev, config.rules, labels_for(config, model))
    return ev


def rule_psds(ev: Evaluation, rules: Sequence[Rule], names: Sequence[str]) -> dict:
    """Threshold-free PSDS (secondary) of what each rule watches: the highest of its labels' scores
    per window, as the detector takes it. Rules whose label has no annotated event are left out."""
    from .psds import score_psds

    annotated = {e.label for e in ev.reference}
    series = {}
    for r in rules:
        index, _ = rule_indices(r, names)
        if index and ev.labels[r.name] in annotated:
            series[r.name] = {f: (s.end, s.scores[:, index].max(axis=1), s.hop) for f, s in ev.scores.items()}
    if not series:
        return {}
    truth = [(e.filename, e.onset, e.offset, e.label) for e in ev.reference]
    return score_psds(truth, ev.files, series, {r: ev.labels[r] for r in series}, WINDOW_SECONDS)
