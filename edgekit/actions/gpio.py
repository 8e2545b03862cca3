"""GPIO outputs that follow events: one gpiozero DigitalOutputDevice per rule with a ``gpio`` action.

"level" holds the pin active from a start to its end; "pulse" makes it active for
``pulse_seconds`` on each start. The safe state is inactive: pins start there, and
:meth:`GpioOutputs.make_safe` / :meth:`GpioOutputs.close` return them there.
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points

from gpiozero import DigitalOutputDevice

from edgekit.errors import GpioError, PinFactoryError
from edgekit.detect.events import Event
from edgekit.actions.settings import GpioAction, GpioSettings, Rule, pin_factory_names

log = logging.getLogger(__name__)

CHIP_GLOB = "/dev/gpiochip*"
NO_CHIP_MESSAGE = (
    "no GPIO chip found (/dev/gpiochip*); on a Pi install lgpio (`pip install edgekit[pi]`), "
    'or set [gpio] pin_factory = "mock" to test without hardware'
)

# Tried in this order when nothing is named. Not "native": gpiozero itself only falls back to it
# with a warning, and on a Pi 5 it cannot drive the pins, so a clear error serves better.
AUTO_FACTORIES = ("lgpio", "rpigpio", "pigpio")


def _load_factory(name: str):
    # gpiozero registers its factories (and a third party its own) as entry points: its own table.
    for ep in entry_points(group="gpiozero_pin_factories"):
        if ep.name.lower() == name.lower():
            return ep.load()()
    raise PinFactoryError(f"unknown GPIO pin factory {name!r}; known: {', '.join(pin_factory_names())}")


def _why(name: str, exc: Exception) -> str:
    if isinstance(exc, ImportError) and name == "lgpio":
        return "lgpio is not installed (`pip install edgekit[pi]`)"
    return f"{type(exc).__name__}: {exc}"


def make_pin_factory(name: str | None = None, *, env: Mapping[str, str] | None = None, chip_glob: str = CHIP_GLOB):
    """A gpiozero pin factory: ``name``, else $GPIOZERO_PIN_FACTORY, else the first that works here.

    Built explicitly (never gpiozero's implicit default) so that failure is one GpioError, not a
    traceback after a string of PinFactoryFallback warnings.
    """
    env = os.environ if env is None else env
    source = "[gpio] pin_factory"
    if not name:
        name, source = env.get("GPIOZERO_PIN_FACTORY") or None, "GPIOZERO_PIN_FACTORY"
    if name:
        try:
            return _load_factory(name)
        except PinFactoryError:
            raise
        except Exception as exc:
            raise PinFactoryError(f"GPIO pin factory {name!r} (from {source}) cannot start: {_why(name, exc)}") from exc
    if not glob.glob(chip_glob):
        raise PinFactoryError(NO_CHIP_MESSAGE)
    reasons = []
    for candidate in AUTO_FACTORIES:
        try:
            return _load_factory(candidate)
        except Exception as exc:
            reasons.append(f"{candidate}: {_why(candidate, exc)}")
    raise PinFactoryError(
        "no GPIO pin factory works here (" + "; ".join(reasons) + "); on a Pi install lgpio (`pip install edgekit[pi]`)"
    )


@dataclass(frozen=True)
class _Output:
    action: GpioAction
    device: DigitalOutputDevice


class GpioOutputs:
    """The GPIO action. ``pin_factory`` (a gpiozero factory instance) overrides the settings."""

    kind = "gpio"

    def __init__(
        self,
        rules: Iterable[Rule],
        settings: GpioSettings | None = None,
        *,
        pin_factory=None,
        env: Mapping[str, str] | None = None,
    ):
        self.settings = settings = settings or GpioSettings()
        self._closed = False
        self._own_factory = pin_factory is None
        self._outputs: dict[str, _Output] = {}
        self.rules = tuple(rules)
        self.factory = pin_factory if pin_factory is not None else make_pin_factory(settings.pin_factory, env=env)
        try:
            for rule in self.rules:
                if rule.gpio is not None:
                    self._outputs[rule.name] = _Output(rule.gpio, self._claim(rule.name, rule.gpio))
        except BaseException:
            self.close()
            raise
        # A crash that skips close() must still leave the pins inactive.
        atexit.register(self.make_safe)

    def _claim(self, name: str, action: GpioAction) -> DigitalOutputDevice:
        if action.mode not in ("level", "pulse"):
            raise GpioError(f"rule {name!r}: GPIO mode must be 'level' or 'pulse', not {action.mode!r}")
        if action.mode == "pulse" and not action.pulse_seconds > 0:
            raise GpioError(f"rule {name!r}: pulse_seconds must be positive")
        try:
            return DigitalOutputDevice(
                action.pin, active_high=action.active_high, initial_value=False, pin_factory=self.factory
            )
        except Exception as exc:
            raise GpioError(f"rule {name!r}: cannot drive GPIO pin {action.pin!r}: {exc}") from exc

    def update(self, rules: Iterable[Rule]) -> None:
        """Follow a reloaded config without touching what did not change.

        An output whose rule keeps the same name and GPIO action stays claimed and in its state
        (a ``level`` output that is on stays on through the reload). The others are released
        (inactive) before new ones are claimed, since a GPIO chip refuses a line still held. If
        a new pin cannot be claimed, the released ones are claimed again (inactive) and the
        GpioError is raised, so the running config keeps its outputs.
        """
        rules = tuple(rules)
        wanted = {r.name: r.gpio for r in rules if r.gpio is not None}
        keep = {n: o for n, o in self._outputs.items() if wanted.get(n) == o.action}
        released = {n: o for n, o in self._outputs.items() if n not in keep}
        for out in released.values():
            self._release(out)
        claimed: dict[str, _Output] = {}
        try:
            for name, action in wanted.items():
                if name not in keep:
                    claimed[name] = _Output(action, self._claim(name, action))
        except BaseException:
            for out in claimed.values():
                self._release(out)
            restored = {}
            for name, out in released.items():
                try:
                    restored[name] = _Output(out.action, self._claim(name, out.action))
                except GpioError as exc:
                    log.error("GPIO: cannot claim %s again for rule %r: %s", out.action.pin, name, exc)
            self._outputs = {n: keep.get(n) or restored[n] for n in self._outputs if n in keep or n in restored}
            raise
        self._outputs = {n: keep.get(n) or claimed[n] for n in wanted}
        self.rules = tuple(rules)

    @staticmethod
    def _release(out: _Output) -> None:
        try:
            out.device.off()
            out.device.close()
        except Exception as exc:
            log.error("GPIO %s: release failed: %s", out.action.pin, exc)

    def describe(self) -> str:
        return "GPIO " + ", ".join(f"{o.action.pin} ({n}, {o.action.mode})" for n, o in self._outputs.items())

    def device(self, rule: str) -> DigitalOutputDevice:
        return self._outputs[rule].device

    def handle(self, event: Event) -> None:
        out = self._outputs.get(event.rule)
        if out is None or self._closed:
            return
        if event.kind == "start":
            if out.action.mode == "pulse":
                # A start during a pulse restarts it, so the pulse always ends pulse_seconds after the last start.
                out.device.blink(on_time=out.action.pulse_seconds, off_time=0, n=1, background=True)
            else:
                out.device.on()
        elif event.kind == "end" and out.action.mode == "level":
            out.device.off()

    def make_safe(self) -> None:
        """Every pin inactive (stopping any pulse). Safe from a signal handler or atexit; never raises."""
        for name, out in self._outputs.items():
            try:
                if not out.device.closed:
                    out.device.off()
            except Exception as exc:
                log.error("GPIO %s (rule %r): cannot make it inactive: %s", out.action.pin, name, exc)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.make_safe)
        self.make_safe()
        for out in self._outputs.values():
            try:
                out.device.close()
            except Exception as exc:
                log.error("GPIO %s: close failed: %s", out.action.pin, exc)
        if self._own_factory and self.factory is not None:
            try:
                self.factory.close()
            except Exception as exc:
                log.error("GPIO pin factory: close failed: %s", exc)

    def status(self) -> str:
        if self._closed:
            return "gpio closed"
        parts = []
        for name, out in self._outputs.items():
            try:
                state = "on" if out.device.value else "off"
            except Exception:
                state = "?"
            parts.append(f"{name}={out.action.pin}:{state}")
        return "gpio " + " ".join(parts)
