"""A custom sound: a small linear head on YAMNet's embedding, and its file.

Here, below the daemon, so that rules and the detector can score a custom sound like a label;
learning one (``edgekit.sounds``) sits above.

The file is a ``.npz`` (numpy's zip of arrays; nothing in it can run code) holding ``weights`` and
one JSON document ``meta``, written here and read, bounded and checked field by field, by
:mod:`edgekit.detect.sound_file`. The JSON carries the format
version, the threshold, the SHA-256 of the model file the embedding came from, the embedding
spec, a training summary and a digest over everything else, so a corrupted or hand-edited file
is refused instead of silently detecting the wrong thing.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.errors import SoundError, SoundModelMismatchError
from edgekit.models.zoo import sha256_file as file_sha256

FORMAT = "edgekit-sound"
VERSION = 1
SUFFIX = ".sound.npz"
CLASSES = 521  # YAMNet's classes, when its scores are features
FEATURES = ("embedding", "scores", "embedding+scores")
MAX_CONTEXT_SECONDS = 6.0  # the live ring holds at most this much (edgekit.detect.context)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise SoundError(
            f"bad sound name {name!r}: use 1-64 lower-case letters, digits, '_' or '-', starting with a "
            "letter or digit (e.g. doorbell, washer_done)"
        )
    return name


@dataclass(frozen=True)
class EmbeddingSpec:
    """What produced the features: the model (name and file hash), the hop, the front end."""

    model: str  # the model's file name, for messages (the hash is what is checked)
    model_sha256: str
    hop_seconds: float  # the hop the background was calibrated at
    frontend: str  # "fixed", "float", or "in-graph" (a waveform model's own front end)
    dims: int = 1024
    stock_labels: tuple[str, ...] = ()  # YAMNet labels whose best logit is an extra feature
    stock_indices: tuple[int, ...] = ()
    features: str = "embedding"  # "embedding", "scores" or "embedding+scores" (YAMNet's scores)
    # Seconds of context (edgekit.detect.context): 0 = one window, as every file before this field;
    # > 0 = the mean and max of the embeddings of the windows started within that many seconds.
    context_seconds: float = 0.0

    @property
    def embedding_width(self) -> int:
        return self.dims * (2 if self.context_seconds > 0 else 1)

    @property
    def width(self) -> int:
        e = self.embedding_width
        n = {"embedding": e, "scores": CLASSES, "embedding+scores": e + CLASSES}[self.features]
        return n + (1 if self.stock_indices else 0)


@dataclass(frozen=True)
class Sound:
    name: str
    weights: np.ndarray = field(compare=False)  # [spec.width] float32 (arrays do not compare with ==)
    bias: float
    threshold: float  # calibrated score at which the sound is taken as present
    spec: EmbeddingSpec
    summary: dict = field(default_factory=dict, compare=False)
    path: Path | None = field(default=None, compare=False)

    @property
    def release(self) -> float:
        """A release below the threshold for hysteresis: halfway down, in logit units."""
        t = min(max(self.threshold, 1e-6), 1 - 1e-6)
        return float(1 / (1 + math.exp(-(math.log(t / (1 - t)) - 1.0))))

    def features(self, embedding: np.ndarray, scores: np.ndarray | None = None,
                 starts: np.ndarray | None = None) -> np.ndarray:
        """[n, width] features from embeddings [n, dims] and the model's scores [n, classes].

        A sound with context pools each window with those before it: ``starts`` (seconds) says
        when each window began (one recording, in order); embeddings already pooled
        ([n, 2 dims], as the live path gives them) pass as they are.
        """
        emb = np.atleast_2d(np.asarray(embedding, np.float32))
        if self.spec.context_seconds > 0 and emb.shape[1] == self.spec.dims:
            if starts is None:
                raise SoundError(f"sound {self.name!r} pools {self.spec.context_seconds:g} s of windows: "
                                 "give the windows' start times")
            from .context import pooled_series

            emb = pooled_series(emb, starts, self.spec.context_seconds)
        if emb.shape[1] != self.spec.embedding_width:
            raise SoundError(f"sound {self.name!r} takes a {self.spec.dims}-d embedding, got {emb.shape[1]}-d")
        if scores is None and (self.spec.stock_indices or self.spec.features != "embedding"):
            raise SoundError(f"sound {self.name!r} also uses the model's scores")
        return feature_matrix(emb, None if scores is None else np.atleast_2d(scores), self.spec.stock_indices,
                              self.spec.features)

    def logits(self, embedding: np.ndarray, scores: np.ndarray | None = None,
               starts: np.ndarray | None = None) -> np.ndarray:
        """The head's logits (float64) for a batch of windows: the score before the sigmoid."""
        return self.features(embedding, scores, starts).astype(np.float64) @ self.weights.astype(np.float64) \
            + self.bias

    def score_arrays(self, embedding: np.ndarray, scores: np.ndarray | None = None,
                     starts: np.ndarray | None = None) -> np.ndarray:
        """Scores in [0, 1] for a batch of windows; the calibrated threshold is 0.5 unless retuned."""
        return np.exp(-np.logaddexp(0.0, -self.logits(embedding, scores, starts))).astype(np.float32)

    def score(self, result) -> float:
        """The sound's score for one window result (anything with ``.embedding`` and ``.scores``).

        A window the volume gate skipped (no embedding) scores 0, like a silent one. The live path:
        one dot product in plain numpy, no batching machinery (it must cost far less than the model).
        """
        emb = getattr(result, "embedding", None)
        if emb is None:
            return 0.0
        spec = self.spec
        if spec.context_seconds > 0:
            raise SoundError(f"sound {self.name!r} needs the windows before this one: score it through "
                             "edgekit.detect.context.ContextRing (the pipeline does)")
        if spec.features != "embedding" or spec.stock_indices:
            return float(self.score_arrays(emb, getattr(result, "scores", None))[0])
        if emb.shape != (spec.dims,):
            raise SoundError(f"sound {self.name!r} takes a {spec.dims}-d embedding, got shape {emb.shape}")
        z = float(np.dot(emb, self.weights)) + self.bias
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def check_model(self, model) -> None:
        """Refuse a model this sound cannot run on: another file than it was learned on (by hash), or
        one whose embedding size or class count does not fit the head (a forged file can claim a
        model's hash; this is what keeps it from failing at the first window instead).

        ``model``: anything with ``path`` and, where known, ``sha256``, ``embedding_dims`` and
        ``num_classes`` (a loaded :class:`~edgekit.models.model.Model`, or the preflight's facts).
        """
        digest = getattr(model, "sha256", None) or file_sha256(Path(model.path))
        if digest != self.spec.model_sha256:
            raise SoundModelMismatchError(
                f"sound {self.name!r} was learned on {self.spec.model} (sha256 {self.spec.model_sha256[:12]}…) "
                f"but the model in use is {Path(model.path).name} (sha256 {digest[:12]}…); learn it again "
                f"with this model: edgekit sounds learn {self.name} --model {model.path} --examples ..."
            )
        dims, classes = getattr(model, "embedding_dims", None), getattr(model, "num_classes", None)
        again = f"; learn it again: edgekit sounds learn {self.name} --model {model.path} --examples ..."
        if dims is not None and dims != self.spec.dims:
            raise SoundModelMismatchError(f"sound {self.name!r} takes a {self.spec.dims}-d embedding, but "
                                          f"{Path(model.path).name} gives a {dims}-d one{again}")
        if classes is not None:
            if "scores" in self.spec.features and classes != CLASSES:
                raise SoundModelMismatchError(f"sound {self.name!r} reads {CLASSES} class scores, but "
                                              f"{Path(model.path).name} has {classes} classes{again}")
            if any(not 0 <= i < classes for i in self.spec.stock_indices):
                raise SoundModelMismatchError(f"sound {self.name!r} names class indices "
                                              f"{list(self.spec.stock_indices)}, but {Path(model.path).name} "
                                              f"has {classes} classes{again}")


def feature_matrix(emb: np.ndarray, scores: np.ndarray | None, stock: tuple[int, ...], kind: str) -> np.ndarray:
    """The head's input: embedding and/or YAMNet's scores, plus the named stock labels' best logit."""
    parts = []
    if kind in ("embedding", "embedding+scores"):
        parts.append(np.asarray(emb, np.float32))
    if kind in ("scores", "embedding+scores"):
        parts.append(np.asarray(scores, np.float32))
    if stock:
        parts.append(stock_logit(scores, stock)[:, None].astype(np.float32))
    return parts[0] if len(parts) == 1 else np.hstack(parts)


def stock_logit(scores: np.ndarray, indices) -> np.ndarray:
    """The logit of the best of the named stock labels' scores (clipped away from 0 and 1)."""
    p = np.clip(np.max(np.asarray(scores, np.float64)[:, list(indices)], axis=1), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _digest(weights: np.ndarray, meta: dict) -> str:
    body = json.dumps({k: v for k, v in meta.items() if k != "digest"}, sort_keys=True).encode()
    return hashlib.sha256(np.ascontiguousarray(weights, "<f4").tobytes() + body).hexdigest()


def save_sound(sound: Sound, path: Path) -> Path:
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "name": sound.name,
        "bias": float(sound.bias),
        "threshold": float(sound.threshold),
        "spec": {
            "model": sound.spec.model,
            "model_sha256": sound.spec.model_sha256,
            "hop_seconds": sound.spec.hop_seconds,
            "frontend": sound.spec.frontend,
            "dims": sound.spec.dims,
            "stock_labels": list(sound.spec.stock_labels),
            "stock_indices": [int(i) for i in sound.spec.stock_indices],
            "features": sound.spec.features,
            # Written only when used: a one-window sound's file is byte for byte the old format.
            **({"context_seconds": float(sound.spec.context_seconds)} if sound.spec.context_seconds > 0 else {}),
        },
        "summary": sound.summary,
    }
    weights = np.asarray(sound.weights, "<f4")
    meta["digest"] = _digest(weights, meta)
    buf = io.BytesIO()
    np.savez(buf, weights=weights, meta=np.array(json.dumps(meta, sort_keys=True)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)  # atomic: a daemon reloading never sees half a file
    return path
