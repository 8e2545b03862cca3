"""The daemon: wire source → pipeline → actions, feed the systemd watchdog, handle signals.

SIGTERM/SIGINT stop cleanly (open events are ended, pins go to their safe state, logs are
flushed); SIGHUP reloads the config, and a bad new config is rejected with the old one kept.
READY=1 is sent once the model is loaded and audio flows; WATCHDOG=1 comes from the processing
loop itself, so a stalled loop gets killed and restarted by systemd.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from dataclasses import replace

from edgekit.errors import AudioError, EdgekitError
from edgekit.detect.events import Event
from edgekit.daemon.notify import Notifier
from edgekit.params import FeatureParams
from edgekit.daemon.settings import Config

log = logging.getLogger("edgekit.service")

STATUS_EVERY = 5.0  # seconds between STATUS= updates when nothing happens


class Service:
    def __init__(self, config_path: str, *, source: str | None = None, speed: str | None = None,
                 notifier: Notifier | None = None):
        self.config_path = config_path
        self.source_override = source
        self.speed_override = speed
        self.notifier = notifier or Notifier()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self.config: Config | None = None
        self.model = None
        self.pipeline = None
        self.actions = None
        self.source = None
        self.last_event: Event | None = None
        self.events: list[Event] = []  # everything emitted this run (bounded below)
        self._silent_since: float | None = None
        self._silence_warned = False

    # -- control, callable from signal handlers and other threads ------------------------------
    def request_stop(self, *_args) -> None:
        self._stop.set()

    def request_reload(self, *_args) -> None:
        self._reload.set()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_reload)

    # -- building the parts --------------------------------------------------------------------
    def _load_config(self, labels=None) -> Config:
        from edgekit.daemon.config import load_config

        cfg = load_config(self.config_path, labels=labels)
        audio = cfg.audio
        if self.source_override:
            audio = replace(audio, source=self.source_override)
        if self.speed_override:
            audio = replace(audio, speed=self.speed_override)
        return replace(cfg, audio=audio)

    def _load_model(self, cfg: Config):
        from edgekit.models.model import load_model

        params = FeatureParams().with_hop(cfg.audio.hop_seconds)
        m = cfg.model
        return load_model(m.model, m.device, labels=m.labels, fallback=m.fallback, params=params)

    def _pipeline(self, cfg: Config, model):
        from edgekit.detect.detector import Detector
        from edgekit.detect.pipeline import Pipeline

        detector = Detector(cfg.rules, model.labels, cfg.audio.hop_seconds)
        return Pipeline(model, detector, cfg.model.frontend, cfg.audio.min_dbfs)

    @staticmethod
    def _actions(cfg: Config):
        from edgekit.actions import build_actions

        return build_actions(cfg)

    def _open_source(self, cfg: Config):
        from edgekit.audio.sources import FileSource, MicSource

        a = cfg.audio
        if a.source == "mic":
            src = MicSource(a.device, a.rate, a.block_seconds)
        else:
            src = FileSource(a.source, a.block_seconds, a.speed)
        src.start()
        return src

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> int:
        self._install_signals()
        cfg = self._load_config()  # syntax and values first, before the slow model load
        self.model = self._load_model(cfg)
        self.config = cfg = self._load_config(labels=self.model.labels)
        self.pipeline = self._pipeline(cfg, self.model)
        self.actions = self._actions(cfg)
        try:
            self.source = self._open_source(cfg)
            log.info("listening: %s; model %s on %s (%s)", self.source.describe(), self.model.path.name,
                     self.model.device, self.model.loaded.runtime)
            return self._loop()
        finally:
            self._shutdown()

    def _loop(self) -> int:
        ready = False
        last_status = 0.0
        while not self._stop.is_set():
            self.notifier.watchdog()
            if self._reload.is_set():
                self._reload.clear()
                self._do_reload()
            block = self.source.read(timeout=0.25)
            if block is None:  # a file source ran out: finish its tail like a whole clip
                self._dispatch(self.pipeline.flush())
                break
            if len(block):
                if not ready:
                    self.notifier.ready(self.status_line())
                    ready = True
                self._watch_silence(block)
                self._dispatch(self.pipeline.push(block))
            now = time.monotonic()
            if now - last_status >= STATUS_EVERY:
                self.notifier.status(self.status_line())
                last_status = now
        return 0

    def _dispatch(self, events) -> None:
        for ev in events:
            self.last_event = ev
            self.events.append(ev)
            del self.events[:-1000]
            log.info("%s %s: %s %.2f (t=%.2f s)", ev.rule, ev.kind, ev.label, ev.score, ev.stream_time)
            self.actions.handle(ev)
            self.notifier.status(self.status_line())

    def _watch_silence(self, block) -> None:
        limit = self.config.audio.silence_warning_seconds
        if block.any():
            if self._silence_warned:
                log.warning("audio input is no longer silent")
            self._silent_since, self._silence_warned = None, False
            return
        now = time.monotonic()
        if self._silent_since is None:
            self._silent_since = now
        elif not self._silence_warned and now - self._silent_since >= limit:
            log.warning("audio input has been all zeros for %.0f s: is the microphone muted or the wrong device?",
                        now - self._silent_since)
            self._silence_warned = True

    def _do_reload(self) -> None:
        self.notifier.reloading()
        try:
            new = self._load_config(labels=self.model.labels)
            model = self.model
            if new.model != self.config.model or new.audio.hop_seconds != self.config.audio.hop_seconds:
                model = self._load_model(new)
                new = self._load_config(labels=model.labels)
            pipeline = self._pipeline(new, model)
            source = self.source
            if new.audio.source != self.config.audio.source or new.audio.device != self.config.audio.device:
                source = self._open_source(new)
        except EdgekitError as exc:
            log.error("reload rejected, keeping the running config: %s", exc)
            self.notifier.ready(self.status_line())
            return
        # Hardware last: the old actions release their pins before the new ones claim them (a
        # real GPIO chip refuses a line that is still held), and if the new ones cannot start,
        # the running config's actions come back.
        self._dispatch(self.pipeline.close())
        self.actions.close()
        try:
            actions = self._actions(new)
        except EdgekitError as exc:
            log.error("reload rejected, keeping the running config: %s", exc)
            self.actions = self._actions(self.config)
            if source is not self.source:
                source.stop()
            self.notifier.ready(self.status_line())
            return
        if source is not self.source:
            self.source.stop()
        self.config, self.model, self.pipeline, self.actions, self.source = new, model, pipeline, actions, source
        log.warning("config reloaded from %s: %d rule(s)", self.config_path, len(new.rules))
        self.notifier.ready(self.status_line())

    def _shutdown(self) -> None:
        self.notifier.stopping()
        try:
            if self.pipeline is not None and self.actions is not None:
                self._dispatch(self.pipeline.close())
        finally:
            if self.actions is not None:
                self.actions.close()
            if self.source is not None:
                self.source.stop()
            self.notifier.close()

    def status_line(self) -> str:
        parts = []
        if self.source is not None:
            st = self.source.stats
            parts.append("audio lost" if st.lost else "listening")
            if st.overflows or st.dropped_blocks:
                parts.append(f"overflows {st.overflows} dropped {st.dropped_blocks}")
            if st.reopens:
                parts.append(f"reopened {st.reopens}x")
            if st.abandoned_streams:
                parts.append(f"{st.abandoned_streams} stuck stream(s) left behind")
        if self.pipeline is not None:
            s = self.pipeline.stats
            ms = 1000 * s.inference_seconds / max(1, s.windows - s.gated)
            lvl = f"{s.last_dbfs:.0f} dBFS" if math.isfinite(s.last_dbfs) else "silence"
            parts.append(f"{s.windows} windows ({s.gated} gated), {ms:.1f} ms/inference, {lvl}")
        if self.last_event is not None:
            ev = self.last_event
            parts.append(f"last event: {ev.rule} {ev.kind} {ev.label} {ev.peak:.2f}")
        if self.actions is not None:
            extra = self.actions.status()
            if extra:
                parts.append(extra)
        return "; ".join(parts)
