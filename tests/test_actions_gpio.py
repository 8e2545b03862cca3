"""GPIO action against gpiozero's MockFactory (pins that record every level they are driven to)."""

from __future__ import annotations

import glob
import time

import pytest
from gpiozero.pins.mock import MockFactory

from edgekit.actions import Actions, build_actions
from edgekit.actions.gpio import NO_CHIP_MESSAGE, GpioOutputs, make_pin_factory
from edgekit.errors import EdgekitError, GpioError
from edgekit.detect.events import Event
from edgekit.daemon.settings import Config, GpioAction, GpioSettings, Rule


def event(kind: str, rule: str = "alarm") -> Event:
    now = time.time()
    return Event(kind, rule, "Smoke detector, smoke alarm", 0.9, 0.9, time.monotonic(), now, 1.0)


def rule(name: str = "alarm", **gpio) -> Rule:
    return Rule(name=name, labels=("Smoke detector, smoke alarm",), gpio=GpioAction(**gpio))


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.close()


def wait_until(cond, timeout=2.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def test_level_follows_start_and_end(factory):
    out = GpioOutputs([rule(pin=17)], pin_factory=factory)
    pin = factory.pin(17)
    assert pin.function == "output" and pin.state is False  # safe from the first moment
    out.handle(event("start"))
    assert pin.state is True
    assert "alarm=17:on" in out.status()
    out.handle(event("end"))
    assert pin.state is False
    out.close()


def test_pulse_is_active_for_pulse_seconds_then_inactive(factory):
    out = GpioOutputs([rule(pin=17, mode="pulse", pulse_seconds=0.2)], pin_factory=factory)
    pin = factory.pin(17)
    t0 = time.monotonic()
    out.handle(event("start"))
    assert wait_until(lambda: pin.state is True, 0.1)
    out.handle(event("end"))  # an end does not cut a pulse short
    assert pin.state is True
    assert wait_until(lambda: pin.state is False, 2.0)
    assert time.monotonic() - t0 >= 0.19
    # A second start restarts the pulse.
    out.handle(event("start"))
    assert wait_until(lambda: pin.state is True, 0.1)
    out.close()
    assert pin.state is False


def test_active_low(factory):
    out = GpioOutputs([rule(pin="GPIO27", active_high=False)], pin_factory=factory)
    pin = factory.pin(27)
    assert pin.state is True  # inactive = high
    out.handle(event("start"))
    assert pin.state is False
    assert out.device("alarm").value == 1
    out.handle(event("end"))
    assert pin.state is True
    out.close()
    assert pin.state is True


def test_close_leaves_every_pin_inactive_and_released(factory):
    out = GpioOutputs(
        [rule("a", pin=17), rule("b", pin=22, active_high=False), rule("c", pin=23, mode="pulse", pulse_seconds=5)],
        pin_factory=factory,
    )
    for name in ("a", "b", "c"):
        out.handle(event("start", name))
    assert [factory.pin(p).state for p in (17, 22, 23)] == [True, False, True]
    out.close()
    assert [factory.pin(p).state for p in (17, 22, 23)] == [False, True, False]
    assert all(factory.pin(p).function == "input" for p in (17, 22, 23))  # released
    out.close()  # idempotent
    out.handle(event("start", "a"))  # ignored once closed
    assert factory.pin(17).state is False
    # Released pins can be claimed again (close really freed them).
    GpioOutputs([rule("a", pin=17)], pin_factory=factory).close()


def test_make_safe_drives_inactive_without_closing(factory):
    out = GpioOutputs([rule(pin=17)], pin_factory=factory)
    out.handle(event("start"))
    out.make_safe()
    assert factory.pin(17).state is False
    out.handle(event("start"))  # still usable: make_safe is for the signal path, close() follows
    assert factory.pin(17).state is True
    out.close()


def test_two_rules_on_two_pins_are_independent(factory):
    out = GpioOutputs([rule("smoke", pin=17), rule("glass", pin=27)], pin_factory=factory)
    out.handle(event("start", "smoke"))
    assert (factory.pin(17).state, factory.pin(27).state) == (True, False)
    out.handle(event("start", "glass"))
    out.handle(event("end", "smoke"))
    assert (factory.pin(17).state, factory.pin(27).state) == (False, True)
    out.handle(event("start", "no-such-rule"))  # events of rules without gpio are ignored
    out.close()


def test_two_rules_on_one_pin_is_a_clear_error(factory):
    with pytest.raises(GpioError, match="rule 'b'.*pin 'GPIO17'"):
        GpioOutputs([rule("a", pin=17), rule("b", pin="GPIO17")], pin_factory=factory)
    assert factory.pin(17).function == "input"  # the first claim was given back


def test_named_factory_from_settings_and_env():
    f = make_pin_factory("mock", env={})
    assert isinstance(f, MockFactory)
    f.close()
    f = make_pin_factory(None, env={"GPIOZERO_PIN_FACTORY": "MOCK"})
    assert isinstance(f, MockFactory)
    f.close()
    with pytest.raises(GpioError, match="unknown GPIO pin factory 'nonsense'"):
        make_pin_factory("nonsense", env={})


def test_through_build_actions_with_mock_setting():
    config = Config(rules=(rule(pin=17),), gpio=GpioSettings(pin_factory="mock"))
    actions = build_actions(config)
    gpio = actions.actions[0]
    assert isinstance(gpio, GpioOutputs)
    actions.handle(event("start"))
    assert gpio.device("alarm").value == 1
    actions.close()
    assert gpio.device("alarm").closed


@pytest.mark.skipif(bool(glob.glob("/dev/gpiochip*")), reason="this machine has a GPIO chip")
def test_no_chip_and_no_factory_is_one_clear_error(monkeypatch, recwarn):
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    with pytest.raises(GpioError) as info:
        GpioOutputs([rule(pin=17)], GpioSettings(pin_factory=None))
    assert str(info.value) == NO_CHIP_MESSAGE
    assert "pin_factory = \"mock\"" in str(info.value) and "edgekit[pi]" in str(info.value)
    assert isinstance(info.value, EdgekitError) and isinstance(info.value, RuntimeError)
    assert not [w for w in recwarn if "gpiozero" in (w.filename or "")]  # no fallback warning spam
    # The same through the fan-out builder: nothing half-built is left behind.
    with pytest.raises(GpioError, match="no GPIO chip found"):
        build_actions(Config(rules=(rule(pin=17),)))


def test_no_chip_seen_through_a_custom_glob(tmp_path):
    with pytest.raises(GpioError, match="no GPIO chip found"):
        make_pin_factory(None, env={}, chip_glob=str(tmp_path / "gpiochip*"))


def test_a_failing_action_does_not_stop_the_others(factory):
    class Broken:
        def handle(self, event):
            raise RuntimeError("boom")

        def close(self):
            raise RuntimeError("boom")

        def status(self):
            return "broken"

    gpio = GpioOutputs([rule(pin=17)], pin_factory=factory)
    actions = Actions([Broken(), gpio])
    actions.handle(event("start"))
    assert factory.pin(17).state is True
    assert actions.status().startswith("broken; gpio")
    actions.close()
    assert factory.pin(17).state is False


# --- reloads ------------------------------------------------------------------------------------

def levels(factory, pin: int) -> list[bool]:
    """Every level the mock pin was driven to, in order, repeats folded."""
    out: list[bool] = []
    for s in factory.pin(pin).states:
        if not out or out[-1] != s.state:
            out.append(s.state)
    return out


def test_a_reload_keeps_an_unchanged_level_output_on(factory):
    out = GpioOutputs([rule("alarm", pin=17), rule("glass", pin=27, mode="pulse", pulse_seconds=0.05)],
                      pin_factory=factory)
    out.handle(event("start", "alarm"))
    before = out.device("alarm")
    # Same alarm rule; glass moved to another pin; a new rule on the pin glass let go of.
    out.update([rule("alarm", pin=17), rule("glass", pin=22, mode="pulse", pulse_seconds=0.05),
                rule("dog", pin=27)])
    assert out.device("alarm") is before and before.value == 1
    assert levels(factory, 17) == [False, True]  # never dropped
    assert out.device("dog").value == 0 and out.device("glass").value == 0
    assert factory.pin(27).function == "output"  # claimed again, by "dog"
    out.handle(event("end", "alarm"))
    assert levels(factory, 17) == [False, True, False]
    out.close()


def test_a_reload_that_cannot_claim_a_pin_keeps_the_running_outputs(factory):
    out = GpioOutputs([rule("alarm", pin=17), rule("glass", pin=27)], pin_factory=factory)
    out.handle(event("start", "alarm"))
    with pytest.raises(GpioError, match="rule 'dog'"):
        out.update([rule("alarm", pin=17), rule("glass", pin=22), rule("dog", pin=22)])
    assert out.device("alarm").value == 1  # untouched
    assert not out.device("glass").closed and factory.pin(27).function == "output"  # claimed back
    assert factory.pin(22).function == "input"  # the half-made claim was given back
    assert [r.name for r in out.rules] == ["alarm", "glass"]
    out.close()


def test_build_actions_with_previous_reuses_the_outputs():
    first = Config(rules=(rule("alarm", pin=17),), gpio=GpioSettings(pin_factory="mock"))
    actions = build_actions(first)
    gpio = actions.actions[0]
    actions.handle(event("start"))
    second = Config(rules=(rule("alarm", pin=17), rule("glass", pin=27)), gpio=GpioSettings(pin_factory="mock"))
    reloaded = build_actions(second, previous=actions)
    assert reloaded.actions == [gpio] and gpio.device("alarm").value == 1
    actions.close()  # used up by the reload: closing it does not touch the reused parts
    assert not gpio.device("alarm").closed
    # Without GPIO rules the outputs go inactive and are released.
    assert build_actions(Config(rules=(Rule("alarm", ("Siren",)),)), previous=reloaded).actions == []
    assert gpio.device("alarm").closed
