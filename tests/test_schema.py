"""The config schema: each field's type, default, range and hint declared once, on the frozen
settings; secrets never shown; the detector's rule free of GPIO and MQTT wiring."""

from __future__ import annotations

import copy
from dataclasses import MISSING, FrozenInstanceError, fields

import pytest

from edgekit.daemon.config import InvalidConfig, parse_config
from edgekit.daemon.settings import (AudioSettings, EventLogSettings, GpioAction, GpioSettings, ModelSettings,
                                     MqttSettings, Rule)
from edgekit.schema import specs

BASE = {"rules": [{"name": "smoke", "labels": ["Smoke detector, smoke alarm"]}]}


def one_problem(patch: dict) -> str:
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(patch))
    with pytest.raises(InvalidConfig) as info:
        parse_config(data)
    assert len(info.value.problems) == 1, info.value.problems
    return info.value.problems[0]


SETTINGS = [ModelSettings, AudioSettings, Rule, GpioAction, GpioSettings, MqttSettings, EventLogSettings]


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_every_field_is_declared_with_its_range_and_hint(cls):
    declared = specs(cls)
    assert list(declared) == [f.name for f in fields(cls)]  # no field escapes the schema
    for f in fields(cls):
        s = declared[f.name]
        assert s.hint or s.kind in ("bool", "choice"), f.name  # the other kinds' messages quote the hint
        if f.default is MISSING or f.default is None:
            continue
        # The default obeys the field's own declaration (they cannot drift apart: one place).
        if s.kind in ("int", "float"):
            assert (s.lo is None or (f.default > s.lo if s.open_lo else f.default >= s.lo)) and \
                   (s.hi is None or f.default <= s.hi), f.name
        if s.kind == "choice":
            assert f.default in s.options(), f.name


def test_pin_factories_are_gpiozeros_own():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="gpiozero_pin_factories")}
    message = one_problem({"gpio": {"pin_factory": "wiringpi"}})
    assert names >= {"lgpio", "mock"} and all(f'"{n}"' in message for n in names)
    assert parse_config({**BASE, "gpio": {"pin_factory": "mock"}}).gpio.pin_factory == "mock"


@pytest.mark.parametrize("wrong", [123456789, ["hunter2-123456789"], {"value": "hunter2-123456789"}, "  "])
def test_a_secret_is_never_echoed(wrong, caplog):
    secret_fields = [(cls, f.name) for cls in SETTINGS for f in fields(cls) if specs(cls)[f.name].secret]
    assert (MqttSettings, "password") in secret_fields
    message = one_problem({"mqtt": {"host": "h", "username": "u", "password": wrong}})
    assert message.startswith("mqtt.password: must be the broker password, got ")
    assert "123456789" not in message and "hunter2" not in message
    # Nor in a log line or a traceback that prints the settings.
    config = parse_config({**BASE, "mqtt": {"host": "h", "username": "u", "password": "hunter2-123456789"}})
    assert config.mqtt.password == "hunter2-123456789"
    assert "hunter2" not in repr(config) and "hunter2" not in str(config.mqtt)


def test_a_rule_gives_the_detector_only_detection():
    from edgekit.detect import rules as detect_rules

    rule = parse_config({"rules": [{"name": "a", "labels": ["Dog"], "enter": 0.6, "hold": 2,
                                    "gpio": {"pin": 17}, "mqtt": False}]}).rules[0]
    plain = rule.detection
    assert type(plain) is detect_rules.Rule and not hasattr(plain, "gpio") and not hasattr(plain, "mqtt")
    assert (plain.name, plain.labels, plain.enter, plain.hold) == ("a", ("Dog",), 0.6, 2.0)


def test_settings_stay_frozen():
    config = parse_config(BASE)
    with pytest.raises(FrozenInstanceError):
        config.rules[0].enter = 0.9
    with pytest.raises(FrozenInstanceError):
        config.audio.hop_seconds = 0.1
