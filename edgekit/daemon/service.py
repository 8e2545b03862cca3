"""The daemon: wire source → pipeline → actions, feed the systemd watchdog, handle signals.

SIGTERM/SIGINT stop cleanly (open events are ended, pins go to their safe state, logs are
flushed); SIGHUP reloads the config, and a bad new config is rejected with the old one kept.
Signals are honoured from the first instant: ``edgekit run`` holds them from its first line
(:mod:`edgekit.daemon.signals`), so a SIGHUP before READY reloads once the loop runs and a
SIGTERM during start-up stops cleanly with status 0.
READY=1 is sent once the model is loaded and audio flows, or once the microphone is known to be
away (the daemon then waits for it, saying so in STATUS=); WATCHDOG=1 comes from the processing
loop itself, so a stalled loop gets killed and restarted by systemd. No PortAudio call runs on
that loop (:mod:`edgekit.audio.opener`): a frozen sound server cannot stall it.

Whether it hears is :attr:`Service.listening_state` ("listening", "waiting_for_microphone",
"error"); ``Service.state_listeners`` are called with (state, reason) on each change, from the loop.

The reload itself is :func:`edgekit.daemon.reload.reload`; it builds the new parts with the
builders here and swaps them into this service.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from dataclasses import replace

import numpy as np

from edgekit.audio.opener import ListeningState
from edgekit.detect.events import Event
from edgekit.errors import AudioError
from edgekit.daemon import signals
from edgekit.daemon.reload import reload
from edgekit.daemon.notify import Notifier
from edgekit.daemon.preflight import preflight
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
        self.remote = None  # MQTT commands and sensors (edgekit.daemon.remote)
        self.last_event: Event | None = None
        self.events: list[Event] = []  # everything emitted this run (bounded below)
        self._silent_since: float | None = None
        self._silence_warned = False
        self._stop_reason: str | None = None
        self._ready = False
        self._event_count = self._start_count = 0
        self._earlier_windows = self._earlier_gated = 0  # counts of pipelines a reload replaced
        # Public: whether the daemon hears (for MQTT availability, a status page). Listeners are
        # called as fn(state, reason) from the loop's thread each time it changes; keep them quick.
        self.listening_state: ListeningState | None = None
        self.state_listeners: list = []
        self.clips = None  # edgekit.daemon.clips.ClipRecorder
        self.live = None  # edgekit.daemon.live.LiveFeed
        self.started = time.monotonic()
        self.starts_per_rule: dict[str, int] = {}

    # -- control, callable from signal handlers and other threads ------------------------------
    def request_stop(self, signum=None, _frame=None) -> None:
        if signum is not None and self._stop_reason is None:
            self._stop_reason = signal.Signals(signum).name
        self._stop.set()

    def request_reload(self, *_args) -> None:
        self._reload.set()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_reload)
        for signum in signals.take():  # held since the process started (`edgekit run`)
            if signum == signal.SIGHUP:
                self.request_reload()
            else:
                self.request_stop(signum)

    def _stopping(self) -> bool:
        if self._stop.is_set():
            log.info("%s: stopping", f"{self._stop_reason} received" if self._stop_reason else "stop requested")
            return True
        return False

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
        from edgekit.models.model import load_configured

        return load_configured(cfg.model, cfg.audio.hop_seconds, embedding=bool(cfg.sounds))

    def _sounds(self, cfg: Config, model) -> tuple:
        """The custom sounds the rules name, read afresh (a reload picks up a sound learned again);
        a bad one is a config error (exit 78; at a reload the running config is kept)."""
        from edgekit.daemon.preflight import load_sounds_for

        out = load_sounds_for(self.config_path, cfg.sounds, model)
        if out:
            log.info("custom sounds: %s", ", ".join(f"{s.name} ({s.path})" for s in out))
        return out

    @staticmethod
    def _detector(cfg: Config, model, sounds):
        from edgekit.detect.detector import Detector
        from edgekit.detect.pipeline import labels_with_sounds

        return Detector([r.detection for r in cfg.rules], labels_with_sounds(model.labels, sounds),
                        cfg.audio.hop_seconds)

    def _pipeline(self, cfg: Config, model, detector, sounds):
        from edgekit.detect.pipeline import Pipeline

        pipeline = Pipeline(model, detector, cfg.model.frontend, cfg.audio.min_dbfs, sounds=sounds)
        pipeline.on_window = self._on_window
        return pipeline

    def _on_window(self, r) -> None:
        if log.isEnabledFor(logging.DEBUG):  # `edgekit -v run`
            self._log_window(r)
        offset = self.pipeline.detector.stream_offset
        if self.clips is not None:
            self.clips.window(r.start + offset, r.end + offset, r.scores)
        if self.live is not None and self.live.wanted():
            from edgekit.daemon.live import window_message

            self.live.send(window_message(r, self))

    def _recorders(self, cfg: Config) -> None:
        """Clips and the live feed, in the state directory (beside the event log)."""
        from edgekit.daemon.state import LIVE_SOCKET, state_dir

        clips = cfg.clips.enabled and cfg.log is not None  # beside the event log, where its records point
        if not (clips or cfg.web.live):
            return
        where = state_dir(cfg)
        if clips:
            from edgekit.daemon.clips import ClipRecorder

            self.clips = ClipRecorder(cfg.clips, where / "clips", self.pipeline.labels, cfg.rules,
                                      cfg.audio.hop_seconds)
            log.info("event clips: %s (%.0f s before, %.0f s after; speech %s)", self.clips.dir,
                     cfg.clips.pre_seconds, cfg.clips.post_seconds,
                     "kept" if cfg.clips.keep_speech else "withheld")
        if cfg.web.live:
            from edgekit.daemon.live import LiveFeed

            self.live = LiveFeed(where / LIVE_SOCKET)

    @property
    def silent(self) -> bool:
        return self._silence_warned

    def _log_window(self, r) -> None:
        """One line per window: its top scores, to tune a rule's enter/release by."""
        t = r.end + self.pipeline.detector.stream_offset
        level = f"{r.dbfs:.0f} dBFS" if math.isfinite(r.dbfs) else "silence"
        if r.scores is None:
            log.debug("t=%.2f s %s: gated (below min_dbfs)", t, level)
            return
        flat = r.scores.reshape(-1)
        labels = self.pipeline.model.labels
        top = np.argsort(flat)[::-1][:3]
        log.debug("t=%.2f s %s: %s", t, level, ", ".join(f"{labels[i]} {flat[i]:.2f}" for i in top))

    @staticmethod
    def _actions(cfg: Config, previous=None):
        from edgekit.actions import build_actions
        from edgekit.actions.eventlog import interactive_fallback, state_directory

        return build_actions(cfg, previous, log_fallback=interactive_fallback(), state_dir=state_directory())

    def _open_source(self, cfg: Config):
        from edgekit.audio.replay import FileSource
        from edgekit.audio.sources import MicSource

        a = cfg.audio
        if a.source == "mic":
            src = MicSource(a.device, a.rate, a.block_seconds)
            src.start(wait=0)  # never fails: without a microphone the loop runs and waits for it
        else:
            src = FileSource(a.source, a.block_seconds, a.speed)
            src.start()
        return src

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> int:
        self._install_signals()
        try:
            # A stop during start-up (the model load takes seconds on a Pi) is honoured between steps.
            if self._stopping():
                return 0
            cfg = self._load_config()  # syntax and values first, before the slow model load
            preflight(self.config_path, cfg)  # what config check checks about the model: same refusals
            if self._stopping():
                return 0
            self.model = self._load_model(cfg)
            self.config = cfg = self._load_config(labels=self.model.labels)
            sounds = self._sounds(cfg, self.model)
            self.pipeline = self._pipeline(cfg, self.model, self._detector(cfg, self.model, sounds), sounds)
            if self._stopping():
                return 0
            self.actions = self._actions(cfg)
            from edgekit.daemon.remote import Remote

            self.remote = Remote(self, self._dispatch)
            self.actions.mutes = self.remote.mutes  # reloads carry it over (build_actions)
            self._recorders(cfg)
            self.source = self._open_source(cfg)
            log.info("listening: %s; model %s on %s (%s)", self.source.describe(), self.model.path.name,
                     self.model.device, self.model.loaded.runtime)
            log.info("events go to: %s", self.actions.describe())
            return self._loop()
        except Exception:
            if self.remote is not None:
                self.remote.set_state("error")  # retained on the broker, for the moment before "offline"
            raise
        finally:
            self._shutdown()

    def _loop(self) -> int:
        last_status = 0.0
        while not self._stopping():
            self.notifier.watchdog()
            if self._reload.is_set():
                self._reload.clear()
                reload(self)
            # Wake when the next window is complete (or every 0.25 s for the watchdog), not for
            # every audio block: at a 0.48 s hop that is 2 wake-ups a second instead of 20-50.
            try:
                block = self.source.read(timeout=0.25, want=self.pipeline.samples_wanted())
            except AudioError:
                self._track_state()  # "error": the listeners hear it before the daemon exits
                raise
            if block is None:  # a file source ran out: finish its tail like a whole clip
                self._dispatch(self.pipeline.flush())
                self._dispatch(self.pipeline.close())
                self._summary()
                break
            self._track_state()
            if not self._ready and (len(block) or self.listening_state is ListeningState.WAITING):
                self.notifier.ready(self.status_line())
                self._ready = True
            if len(block):
                self._watch_silence(block)
                if self.clips is not None:
                    self.clips.push(block)
                self._dispatch(self.pipeline.push(block))
            self.remote.tick()
            now = time.monotonic()
            if now - last_status >= STATUS_EVERY:
                self.notifier.status(self.status_line())
                last_status = now
        return 0

    def _track_state(self) -> None:
        state = self.source.state
        if state is self.listening_state:
            return
        self.listening_state = state
        self.notifier.status(self.status_line())
        for listener in list(self.state_listeners):
            try:
                listener(state, self.source.state_detail)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the listening
                log.exception("listening-state listener %r failed", listener)

    def _summary(self) -> None:
        """One line at the end of a replayed file: what it amounted to, and where it went."""
        s = self.pipeline.stats
        n, starts = self._event_count, self._start_count
        log.info("replay finished: %s, %.1f s of audio, %d windows (%d gated), %d event%s (%d start, %d end); "
                 "written to: %s", self.source.describe(), self.stream_time, self._earlier_windows + s.windows,
                 self._earlier_gated + s.gated, n, "" if n == 1 else "s", starts, n - starts, self.actions.describe())

    @property
    def stream_time(self) -> float:
        """Seconds of audio since the daemon started, across reloads."""
        if self.pipeline is None:
            return 0.0
        return self.pipeline.detector.stream_offset + self.pipeline.stream_seconds

    def _dispatch(self, events) -> None:
        for ev in events:
            self._event_count += 1
            self._start_count += ev.kind == "start"
            if self.clips is not None:
                try:
                    ev = self.clips.on_event(ev, self.stream_time)
                except Exception:  # a clip must never cost an event
                    log.exception("clips: failed on a %s event of rule %r", ev.kind, ev.rule)
            if ev.kind == "start":
                self.starts_per_rule[ev.rule] = self.starts_per_rule.get(ev.rule, 0) + 1
            self.last_event = ev
            self.events.append(ev)
            del self.events[:-1000]
            log.info("%s %s: %s %.2f (t=%.2f s)", ev.rule, ev.kind, ev.label, ev.score, ev.stream_time)
            if not self.actions.handle(ev):
                log.info("%s %s: muted, so the event log has it and GPIO and MQTT do not", ev.rule, ev.kind)
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

    def _shutdown(self) -> None:
        self.notifier.stopping()
        try:
            if self.pipeline is not None and self.actions is not None:
                self._dispatch(self.pipeline.close())
                if self.remote is not None:
                    self.remote.close()
        finally:
            if self.actions is not None:
                self.actions.close()
            if self.clips is not None:
                self.clips.close()
            if self.live is not None:
                self.live.close()
            if self.source is not None:
                self.source.stop()
            self.notifier.close()

    def status_line(self) -> str:
        parts = []
        if self.source is not None:
            st = self.source.stats
            parts.append(self.source.status_text())
            if st.overflows or st.dropped_blocks:
                parts.append(f"overflows {st.overflows} dropped {st.dropped_blocks}")
            if st.reopens:
                parts.append(f"reopened {st.reopens}x")
            if st.stuck_streams:
                parts.append(f"{st.stuck_streams} stuck stream(s) left behind")
        if self.pipeline is not None:
            s = self.pipeline.stats
            ms = 1000 * s.inference_seconds / max(1, s.windows - s.gated)
            lvl = f"{s.last_dbfs:.0f} dBFS" if math.isfinite(s.last_dbfs) else "silence"
            parts.append(f"{s.windows} windows ({s.gated} gated), {ms:.1f} ms/inference, {lvl}")
        if self.last_event is not None:
            ev = self.last_event
            parts.append(f"last event: {ev.rule} {ev.kind} {ev.label} {ev.peak:.2f}")
        if self.clips is not None:
            parts.append(self.clips.status())
        if self.actions is not None:
            extra = self.actions.status()
            if extra:
                parts.append(extra)
        return "; ".join(parts)
