"""SIGHUP: apply the config file anew to the running daemon, or keep the running one if it is bad.

A reload keeps what did not change: rules that are equal keep their detector state (a sounding
alarm stays one event), the audio stream keeps going when the model and front end are the
same (else the new detector's ``stream_offset`` carries the clock on), and unchanged actions
are reused (:func:`edgekit.actions.build_actions` with ``previous``). Changed or removed rules
end their open events through the running actions before the new ones take over.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from edgekit.errors import EdgekitError

if TYPE_CHECKING:
    from edgekit.daemon.service import Service

log = logging.getLogger("edgekit.service")  # the daemon's one logger: reloads read as its lines


def reload(svc: Service) -> None:
    """Build the new config's parts with ``svc``'s builders, then swap them in, or reject it."""
    if svc._ready:  # before READY systemd is not waiting for a reload to finish
        svc.notifier.reloading()
    old = svc.config
    try:
        new = svc._load_config(labels=svc.model.labels)
        model = svc.model
        if (new.model != old.model or new.audio.hop_seconds != old.audio.hop_seconds
                or bool(new.sounds) != model.has_embedding):
            model = svc._load_model(new)
            new = svc._load_config(labels=model.labels)
        sounds = svc._sounds(new, model)  # read afresh: a sound may have been learned again
        detector = svc._detector(new, model, sounds)
        # The same model, front end and gate: keep the stream (and its half-filled window).
        keep_stream = model is svc.model and (new.model.frontend, new.audio.min_dbfs) == (
            old.model.frontend, old.audio.min_dbfs) and [s.name for s in sounds] == [
            s.name for s in svc.pipeline.sounds]
        pipeline = svc.pipeline if keep_stream else svc._pipeline(new, model, detector, sounds)
        source = svc.source
        if new.audio.source != old.audio.source or new.audio.device != old.audio.device:
            source = svc._open_source(new)
    except EdgekitError as exc:
        _reject(svc, exc)
        return
    before = svc.pipeline.detector
    # Carried: rules equal in detection and in their actions (a rule whose pin moved ends
    # on the old pin and starts afresh on the new one).
    same = {r.name for r in new.rules if r in set(old.rules)}
    carried = detector.carry_over(before, names=same)
    detector.stream_offset = svc.stream_time if not keep_stream else before.stream_offset
    # Rules that changed or went away end their open events through the running actions
    # (their level output drops, their MQTT state goes OFF); carried ones go on untouched.
    svc._dispatch(before.close(time.monotonic(), time.time(), svc.pipeline.stream_seconds, keep=carried))
    try:
        actions = svc._actions(new, previous=svc.actions)
    except EdgekitError as exc:  # the running actions are left as they were
        if source is not svc.source:
            source.stop()
        _reject(svc, exc)
        return
    if source is not svc.source:
        svc.source.stop()
    if keep_stream:
        pipeline.detector = detector
        pipeline.sounds = sounds  # the same names, read again (perhaps learned anew)
    else:
        svc._earlier_windows += svc.pipeline.stats.windows
        svc._earlier_gated += svc.pipeline.stats.gated
    svc.config, svc.model, svc.pipeline, svc.actions, svc.source = new, model, pipeline, actions, source
    kept = f"; {len(carried)} unchanged rule(s) carried over" if carried else ""
    log.warning("config reloaded from %s: %d rule(s)%s", svc.config_path, len(new.rules), kept)
    if svc._ready:
        svc.notifier.ready(svc.status_line())


def _reject(svc: Service, exc: Exception) -> None:
    log.error("reload rejected, keeping the running config: %s", exc)
    if svc._ready:
        svc.notifier.ready(svc.status_line())
