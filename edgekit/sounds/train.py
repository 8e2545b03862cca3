"""Learn a custom sound from a few examples: positives, negatives, a linear head, a threshold.

Positives are the windows that hold the active part of each example, clean and augmented
(mixed into the user's room at 0-20 dB SNR, gain, time shift). Negatives are the room's windows
plus the shipped bank of everyday sounds. The head is an L2 logistic regression on the 1024-d
embedding (optionally plus the logit of a stock YAMNet label the user says the sound resembles).
Its threshold is calibrated on the room's windows *scored by heads that never saw them*
(cross-fitting by recording), so the false-alarm rate it promises is not an in-sample one.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np

from ..audio.background import audible_seconds_of, false_alarm_budget
from ..errors import ExamplesError, SoundError
from ..params import FeatureParams
from .bank import Bank, load_bank
from .embed import Embedded
from .examples import Example, augment, check_examples, positive_windows
from .logreg import fit_logistic
from ..detect.heads import EmbeddingSpec, Sound, check_name, feature_matrix

Embed = Callable[[np.ndarray, float], Embedded]  # (int16 pcm, hop seconds) -> windows
CV_NEWTON_STEPS = 4  # a fold's fit from the full head's optimum: Newton converges in a few steps


@dataclass(frozen=True)
class TrainOptions:
    hop: float = 0.2  # hop of the example windows: several views of each event
    background_hop: float = 0.48  # hop of the room's windows, as the daemon listens
    augment: int = 3  # augmented copies of each example
    snr_db: tuple[float, float] = (0.0, 20.0)
    gain_db: tuple[float, float] = (-12.0, 6.0)
    max_shift: float = 0.5
    c: float = 0.1  # inverse L2 strength (scikit-learn's C) on standardised features
    bank_weight: float = 1.0  # weight of the shipped negatives relative to the room's
    target_fa_per_hour: float = 1.0
    margin: float = 0.5  # logits added above the highest held-out room score when no false alarm is allowed
    min_logit: float = 0.0  # never a threshold below the raw head's even odds
    folds: int = 3  # cross-fitting folds for the calibration
    features: str = "embedding"  # "embedding", "scores" (YAMNet's 521) or "embedding+scores"
    # One scale for all 1024 dimensions: standardising each one blew up dimensions that barely vary
    # in the examples, and held-out room windows then scored absurdly high (dev recall 0.19 -> 0.57).
    standardize: bool = False
    balance: bool = True  # weigh positives and negatives equally in all
    seed: int = 0
    # Context (edgekit.detect.context): seconds of windows pooled (mean and max) into each feature.
    # With several candidates, cross-validation on the examples and the room picks one.
    contexts: tuple[float, ...] = (0.0,)
    cv_folds: int = 3  # folds of that cross-validation (by example, and by room recording)


@dataclass
class TrainingSet:
    positives: np.ndarray  # [p, dims] embeddings
    positive_scores: np.ndarray  # [p, classes]
    positive_group: np.ndarray  # [p] which example each window came from
    positive_mix: np.ndarray  # [p] which background recording was mixed in (-1: none)
    negatives: np.ndarray  # [q, dims] the room's windows
    negative_scores: np.ndarray
    negative_group: np.ndarray  # [q] which background recording
    negative_starts: np.ndarray  # [q] seconds within its recording
    background_seconds: float  # audible seconds: digital silence is not background
    examples: int
    notes: list[str] = field(default_factory=list)
    # Pooled embeddings per context (seconds > 0): {C: (positives [p, 2 dims], negatives [q, 2 dims])}.
    pooled: dict = field(default_factory=dict)
    context: float = 0.0  # the context of ``positives``/``negatives`` in this view

    def view(self, context: float) -> "TrainingSet":
        """The same windows with features pooled over ``context`` seconds (0: one window)."""
        if context <= 0:
            return self
        pos, neg = self.pooled[context]
        return replace(self, positives=pos, negatives=neg, context=context)


def prepare(examples: list[Example], background: list[tuple[str, np.ndarray]], embed: Embed,
            options: TrainOptions = TrainOptions(), params: FeatureParams = FeatureParams()) -> TrainingSet:
    from ..detect.context import pooled_series

    rng = np.random.default_rng(options.seed)
    room = [np.asarray(pcm, np.int16) for _, pcm in background]
    contexts = sorted({c for c in options.contexts if c > 0})
    pooled_pos: dict = {c: [] for c in contexts}
    pooled_neg: dict = {c: [] for c in contexts}
    pos, pos_scores, groups, mixes = [], [], [], []
    for i, ex in enumerate(examples):
        copies = [(ex.pcm, ex.active, -1)]
        copies += [augment(ex, room, rng, snr_db=options.snr_db, gain_db=options.gain_db, max_shift=options.max_shift)
                   for _ in range(options.augment)]
        for pcm, active, mix in copies:
            e = embed(pcm, options.hop)
            keep = positive_windows(active, e.starts, params)
            for c in contexts:  # a window's context reaches back into the clip's lead-in, as live
                pooled_pos[c].append(pooled_series(e.embeddings, e.starts, c)[keep])
            pos.append(e.embeddings[keep])
            pos_scores.append(e.scores[keep])
            groups.append(np.full(int(keep.sum()), i))
            mixes.append(np.full(int(keep.sum()), mix))
    neg, neg_scores, neg_group, neg_starts = [], [], [], []
    for j, pcm in enumerate(room):
        e = embed(pcm, options.background_hop)
        for c in contexts:
            pooled_neg[c].append(pooled_series(e.embeddings, e.starts, c))
        neg.append(e.embeddings)
        neg_scores.append(e.scores)
        neg_group.append(np.full(len(e), j))
        neg_starts.append(e.starts)
    dims = pos[0].shape[1] if pos else 1024
    classes = pos_scores[0].shape[1] if pos_scores else 521
    return TrainingSet(
        positives=np.concatenate(pos), positive_scores=np.concatenate(pos_scores), positive_group=np.concatenate(groups),
        positive_mix=np.concatenate(mixes),
        negatives=np.concatenate(neg) if neg else np.zeros((0, dims), np.float32),
        negative_scores=np.concatenate(neg_scores) if neg_scores else np.zeros((0, classes), np.float32),
        negative_group=np.concatenate(neg_group) if neg_group else np.zeros(0, int),
        negative_starts=np.concatenate(neg_starts) if neg_starts else np.zeros(0),
        background_seconds=sum(audible_seconds_of([p], params.sample_rate_hz) for p in room), examples=len(examples),
        pooled={c: (np.concatenate(pooled_pos[c]),
                    np.concatenate(pooled_neg[c]) if pooled_neg[c] else np.zeros((0, 2 * dims), np.float32))
                for c in contexts},
    )


def false_alarms(scores: np.ndarray, groups: np.ndarray, threshold: float) -> int:
    """Events a detector would report: runs of consecutive windows at or above the threshold."""
    above = scores >= threshold
    starts = above & ~np.concatenate([[False], above[:-1] & (groups[1:] == groups[:-1])])
    return int(starts.sum())


def calibrate(logits: np.ndarray, groups: np.ndarray, hours: float, options: TrainOptions) -> tuple[float, float]:
    """The lowest logit threshold whose false alarms on ``logits`` stay within the target; its FA/hour.

    Logits, not probabilities: a confident head saturates its probabilities at 1.0, where every
    window would tie. The budget is :func:`edgekit.audio.background.false_alarm_budget`'s, the
    rule ``calibrate`` uses (too little background is refused); with a budget of 0, the threshold
    goes ``margin`` above the highest window.
    """
    allowed = false_alarm_budget(hours * 3600.0, options.target_fa_per_hour, "--fa-per-hour")
    floor = options.min_logit
    if not len(logits):
        return floor, 0.0
    if allowed == 0:
        return max(float(logits.max()) + options.margin, floor), 0.0
    for t in np.unique(np.concatenate([[floor], logits[logits > floor]])):
        fa = false_alarms(logits, groups, t)
        if fa <= allowed:
            return float(t), fa / hours
    return float(logits.max()) + options.margin, 0.0


def _features(emb, scores, stock: tuple[int, ...], kind: str = "embedding"):
    return feature_matrix(emb, scores, stock, kind)


def _fit(ts: TrainingSet, bank: Bank | None, stock, options, pos_mask=None, neg_mask=None, bank_scores=None, init=None,
         max_iter: int = 100):
    pm = np.ones(len(ts.positives), bool) if pos_mask is None else pos_mask
    nm = np.ones(len(ts.negatives), bool) if neg_mask is None else neg_mask
    xs = [_features(ts.positives[pm], ts.positive_scores[pm], stock, options.features), _features(ts.negatives[nm], ts.negative_scores[nm], stock, options.features)]
    ws = [np.full(pm.sum(), 1.0), np.full(nm.sum(), 1.0)]
    if bank is not None and len(bank):
        # The shipped bank holds single windows (no neighbours): each is its own context.
        b = bank.embeddings if ts.context <= 0 else np.hstack([bank.embeddings, bank.embeddings])
        xs.append(_features(b, bank_scores, stock, options.features))
        ws.append(np.full(len(bank), options.bank_weight * max(nm.sum(), len(bank)) / len(bank)))
    x = np.concatenate(xs)
    y = np.concatenate([np.ones(pm.sum()), np.zeros(len(x) - pm.sum())])
    w = np.concatenate(ws)
    if options.balance:
        w[y == 1] *= w[y == 0].sum() / w[y == 1].sum()  # balance the classes
    w *= len(w) / w.sum()
    return fit_logistic(x, y, c=options.c, sample_weight=w, standardize=options.standardize, init=init,
                        max_iter=max_iter)


def _room_folds(groups: np.ndarray, folds: int) -> np.ndarray:
    """Each room window's fold: by recording when there are enough, else contiguous parts of each."""
    if len(np.unique(groups)) >= folds:
        return groups % folds
    fold = np.zeros(len(groups), int)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        fold[idx] = np.arange(len(idx)) * folds // max(len(idx), 1)
    return fold


def choose_context(ts: TrainingSet, bank: Bank | None, bank_scores, stock,
                   options: TrainOptions) -> tuple[float, list, object]:
    """The context (seconds) that cross-validates best on the examples and the room alone; the
    table of candidates; the chosen context's head fitted on everything (None: not fitted yet).

    Folds hold out examples and room recordings together (positives mixed with a held-out room
    recording go too). A held-out example counts as heard when its best clean window scores above
    every held-out room window (no false alarm at all); ties go to the better ranking (the share
    of room windows below each example's best), then to the shorter context: less state, less delay.
    Each fold's head starts from the head fitted on everything (Newton's method then needs a step
    or three to the fold's own optimum, as in the threshold's cross-fitting): a 2048-d fit costs
    about four times a 1024-d one, and this keeps choosing among four contexts affordable.
    """
    candidates = sorted(set(options.contexts))
    if len(candidates) == 1 or not len(ts.negatives) or ts.examples < 2:
        return candidates[0], [], None
    folds = min(options.cv_folds, ts.examples)
    ex_fold = np.arange(ts.examples) % folds
    room_fold = _room_folds(ts.negative_group, folds)
    table, heads = [], {}
    for c in candidates:
        v = ts.view(c)
        heads[c] = full = _fit(v, bank, stock, options, bank_scores=bank_scores)
        heard, rank = [], []
        for f in range(folds):
            held_ex = ex_fold[v.positive_group] == f
            held_room = room_fold == f
            unseen = np.unique(v.negative_group[held_room])
            train_pos = ~held_ex & ~np.isin(v.positive_mix, unseen)
            if not train_pos.any() or held_room.all() or not held_room.any():
                continue
            h = _fit(v, bank, stock, options, pos_mask=train_pos, neg_mask=~held_room, bank_scores=bank_scores,
                     init=full, max_iter=CV_NEWTON_STEPS)
            room = h.logits(_features(v.negatives[held_room], v.negative_scores[held_room], stock, options.features))
            clean = held_ex & (v.positive_mix == -1)
            z = h.logits(_features(v.positives[clean], v.positive_scores[clean], stock, options.features))
            for g in np.unique(v.positive_group[clean]):
                best = float(z[v.positive_group[clean] == g].max())
                heard.append(best > room.max())
                rank.append(float(np.mean(room < best)))
        table.append({"context_seconds": c, "heard": float(np.mean(heard)) if heard else 0.0,
                      "rank": float(np.mean(rank)) if rank else 0.0})
    best = max(table, key=lambda r: (round(r["heard"], 6), round(r["rank"], 4), -r["context_seconds"]))
    return best["context_seconds"], table, heads[best["context_seconds"]]


def fit_sound(name: str, ts: TrainingSet, spec: EmbeddingSpec, bank: Bank | None = None,
              bank_scores: np.ndarray | None = None, options: TrainOptions = TrainOptions()) -> Sound:
    """Fit the head on everything, and calibrate its threshold on cross-fitted room scores."""
    check_name(name)
    t0 = time.perf_counter()
    stock = spec.stock_indices
    if len(ts.positives) == 0:
        raise ExamplesError("no window of the examples holds the sound; record clips where it is clearly audible")
    context, cv, head = choose_context(ts, bank, bank_scores, stock, options)
    ts = ts.view(context)
    spec = replace(spec, context_seconds=context)
    if head is None:
        head = _fit(ts, bank, stock, options, bank_scores=bank_scores)
    hours = ts.background_seconds / 3600
    notes = list(ts.notes)
    # Held-out room scores: each background recording (or a contiguous part of one, when there
    # are few) is scored by a head fitted without it.
    oof = np.zeros(len(ts.negatives))
    groups = ts.negative_group.copy()
    fold = _room_folds(groups, options.folds)
    for f in range(options.folds if len(ts.negatives) else 0):
        held = fold == f
        if held.any():
            # Positives mixed with a held-out recording go too: they would teach its sound.
            unseen = np.unique(groups[held])
            h = _fit(ts, bank, stock, options, pos_mask=~np.isin(ts.positive_mix, unseen), neg_mask=~held,
                     bank_scores=bank_scores, init=head)
            oof[held] = h.logits(_features(ts.negatives[held], ts.negative_scores[held], stock, options.features))
    if len(ts.negatives):
        z_t, fa_rate = calibrate(oof, groups, hours, options)
    else:
        z_t, fa_rate = options.min_logit, float("nan")
    in_sample = head.logits(_features(ts.positives, ts.positive_scores, stock, options.features))
    detected = [bool(np.any(in_sample[ts.positive_group == i] >= z_t)) for i in range(ts.examples)]
    if sum(detected) < max(1, ts.examples / 2):
        raise ExamplesError(
            f"the examples are indistinguishable from the background: only {sum(detected)} of {ts.examples} score "
            f"above the threshold that keeps false alarms at {options.target_fa_per_hour:g}/hour in your room. "
            "Record the sound closer to the microphone, louder than the room, with little else going on; and "
            "give a background recording that does not contain the sound"
        )
    # Rescale the logit so that the calibrated threshold scores 0.5 and a typical example 0.9:
    # the ranking is unchanged, and a score reads the same for every sound.
    best = np.array([in_sample[ts.positive_group == i].max() for i in range(ts.examples) if np.any(ts.positive_group == i)])
    spread = float(np.median(best)) - z_t
    tau = spread / np.log(9) if spread > 1e-6 else 1.0
    weights, bias = head.weights / tau, (head.bias - z_t) / tau
    threshold = 0.5
    summary = {
        "examples": ts.examples, "positive_windows": int(len(ts.positives)), "background_windows": int(len(ts.negatives)),
        "background_minutes": round(ts.background_seconds / 60, 2), "bank_windows": int(len(bank)) if bank is not None else 0,
        "examples_detected": int(sum(detected)), "held_out_fa_per_hour": fa_rate,
        "target_fa_per_hour": options.target_fa_per_hour, "fit_seconds": round(time.perf_counter() - t0, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "notes": notes,
        "options": {k: v for k, v in asdict(options).items()},
        "context_seconds": context, "context_cv": cv,
    }
    return Sound(name=name, weights=weights.astype(np.float32), bias=float(bias), threshold=threshold,
                 spec=spec, summary=summary)


def stock_indices(labels: tuple[str, ...] | None, names: tuple[str, ...]) -> tuple[int, ...]:
    if not names:
        return ()
    if labels is None:
        raise SoundError("the model has no labels, so --like cannot name a stock label")
    lower = {l.lower(): i for i, l in enumerate(labels)}
    missing = [n for n in names if n.lower() not in lower]
    if missing:
        raise SoundError(f"unknown YAMNet label(s) {missing}; see `edgekit classify` output for label names")
    return tuple(lower[n.lower()] for n in names)


def learn(name: str, example_recordings: list[tuple[str, np.ndarray]], background: list[tuple[str, np.ndarray]],
          embedder, options: TrainOptions = TrainOptions(), like: tuple[str, ...] = (), use_bank: bool = True) -> Sound:
    """The whole of ``edgekit sounds learn``: check, embed, fit, calibrate (``embedder``: an :class:`Embedder`)."""
    check_name(name)
    stock = stock_indices(embedder.labels, tuple(like))
    examples = check_examples(example_recordings, embedder.params)
    if background:  # refused before any model time, by the rule calibrate uses
        seconds = sum(audible_seconds_of([np.asarray(pcm, np.int16)], embedder.params.sample_rate_hz)
                      for _, pcm in background)
        false_alarm_budget(seconds, options.target_fa_per_hour, "--fa-per-hour", " in --background")
    ts = prepare(examples, background, embedder.embed, options, embedder.params)
    bank = load_bank() if use_bank else None
    if bank is not None and bank.embeddings.shape[1] != embedder.dims:
        ts.notes.append(f"shipped negatives skipped: they are {bank.embeddings.shape[1]}-d, this model's embedding is {embedder.dims}-d")
        bank = None
    if not background:
        ts.notes.append("no background recording: the threshold is a default, not calibrated on your room")
    needs_scores = bool(stock) or "scores" in options.features
    bank_scores = embedder.scores_from_embeddings(bank.embeddings) if needs_scores and bank is not None else None
    spec = EmbeddingSpec(model=embedder.path.name, model_sha256=embedder.sha256, hop_seconds=options.background_hop,
                         frontend=embedder.frontend, dims=embedder.dims, stock_labels=tuple(like), stock_indices=stock,
                         features=options.features)
    return fit_sound(name, ts, spec, bank, bank_scores, options)
