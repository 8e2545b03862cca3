"""Config: TOML -> frozen Config, every problem named by key with a fix, and `edgekit config check`."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import pytest

from edgekit import cli
from edgekit.daemon.config import InvalidConfig, load_config, parse_config, suggest_labels
from edgekit.errors import ConfigError
from edgekit.models.labels import load_labels
from edgekit.daemon.settings import Config, GpioAction

EXAMPLE = Path(__file__).resolve().parents[1] / "systemd" / "edgekit.toml"
BASE = {"rules": [{"name": "smoke", "labels": ["Smoke detector, smoke alarm"]}]}


@pytest.fixture(scope="module")
def yamnet_labels(models_dir):
    return load_labels(models_dir / "yamnet_class_map.csv")


@pytest.fixture
def main(monkeypatch):
    """The CLI with `config` registered, whether or not cli.py lists it yet."""
    monkeypatch.setitem(cli.COMMANDS, "config", "config")
    return cli.main


@pytest.fixture
def no_models(monkeypatch, tmp_path):
    """Model directories with nothing in them, whatever this machine has installed."""
    empty = tmp_path / "models"
    empty.mkdir()
    monkeypatch.setattr("edgekit.models.paths.model_dirs", lambda: [empty])
    return empty


def problems(patch: dict | None = None, labels=None, rule: dict | None = None) -> tuple[str, ...]:
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(patch or {}))
    if rule:
        data["rules"][0].update(rule)
    with pytest.raises(InvalidConfig) as info:
        parse_config(data, labels)
    return info.value.problems


def one_problem(*args, **kw) -> str:
    found = problems(*args, **kw)
    assert len(found) == 1, found
    return found[0]


# --- the example ------------------------------------------------------------------------------


def test_example_config_passes_with_yamnet_labels(yamnet_labels):
    config = load_config(EXAMPLE, labels=yamnet_labels)
    assert isinstance(config, Config) and config.source_path == str(EXAMPLE)
    assert (config.model.model, config.model.device, config.model.frontend) == ("yamnet_spectra_in", "cpu", "fixed")
    smoke, glass = config.rules
    assert smoke.name == "smoke_alarm"
    assert smoke.labels == ("Smoke detector, smoke alarm", "Fire alarm", "Alarm", "Siren")
    assert smoke.gpio == GpioAction(pin=17, mode="level")
    assert glass.gpio.mode == "pulse" and glass.gpio.pulse_seconds == 2.0 and glass.gpio.pin == 27
    assert config.mqtt is None and config.log.path == "/var/lib/edgekit/events.jsonl"


def test_example_config_check_cli_reads_labels_from_the_model(main, models_dir, monkeypatch, capsys):
    monkeypatch.setenv("EDGEKIT_MODEL_DIR", str(models_dir))
    assert main(["config", "check", str(EXAMPLE)]) == 0
    out = capsys.readouterr()
    assert out.out == (f"{EXAMPLE}: ok (2 rules: smoke_alarm, glass_break)\n"
                       f"  model {models_dir / 'yamnet_spectra_in.tflite'} (log-mel, 521 classes; labels from "
                       f"{models_dir / 'yamnet_class_map.csv'})\n")
    assert out.err == ""


def test_check_reads_a_class_map_for_a_model_without_labels(main, no_models, models_dir, tmp_path, capsys):
    shutil.copy(models_dir / "yamnet_class_map.csv", no_models)
    shutil.copy(models_dir / "yamnet_spectra_in.tflite", no_models / "my_yamnet.tflite")
    path = tmp_path / "c.toml"
    path.write_text('[model]\nmodel = "my_yamnet"\n[[rules]]\nname = "smoke"\nlabels = ["smoke alarm"]\n')
    assert main(["config", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (f'edgekit: error: {path}: rules[0].labels[0] (rule "smoke"): unknown label or group '
                           '"smoke alarm"; did you mean "Smoke detector, smoke alarm"?')


# --- config check refuses what run refuses, with run's message ----------------------------------


def _run_and_check(config: Path, env: dict) -> tuple[tuple[int, str], tuple[int, str]]:
    """(exit status, stderr) of `edgekit run` and of `edgekit config check` on the same file."""
    import subprocess
    import sys

    out = []
    for argv in (["run", "--config", str(config)], ["config", "check", str(config)]):
        r = subprocess.run([sys.executable, "-m", "edgekit", *argv], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)
        out.append((r.returncode, r.stderr))
    return out[0], out[1]


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("model,extra,says", [
    ('"nosuchmodel"', "", "model.model: model 'nosuchmodel' not found; looked in {empty}"),
    ('"yamnet"', "", "model.model: model 'yamnet' not found; looked in {empty}"),
    ("{models}/mobilenet_v1_0.25_128_quant.tflite", "", "is an image model (input 1x128x128x3), not an audio model"),
    ("{models}/yamnet_spectra_in_edgetpu.tflite", "", "model.device: yamnet_spectra_in_edgetpu.tflite is compiled for "
                                                      "the Edge TPU"),
    ("{models}/yamnet.tflite", 'labels = "{models}/imagenet_labels.txt"\n',
     "model.labels: {models}/imagenet_labels.txt: 1001 labels for a model with 521 outputs"),
    ("{models}/yamnet.tflite", "", 'unknown label or group "smoke alarm"; did you mean "Smoke detector, smoke alarm"?'),
])
def test_check_refuses_what_run_refuses_with_the_same_message(model, extra, says, models_dir, tmp_path):
    empty = tmp_path / "models"
    empty.mkdir()
    env = {**os.environ, "EDGEKIT_MODEL_DIR": str(empty), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("STATE_DIRECTORY", None)
    fill = {"models": models_dir, "empty": empty}
    config = tmp_path / "c.toml"
    config.write_text(f'[model]\nmodel = "{model.strip(chr(34)).format(**fill)}"\n{extra.format(**fill)}'
                      f'[audio]\nsource = "mic"\n[log]\npath = "{tmp_path}/events.jsonl"\n'
                      '[[rules]]\nname = "smoke"\nlabels = ["smoke alarm"]\n')
    (run_rc, run_err), (check_rc, check_err) = _run_and_check(config, env)
    assert (run_rc, check_rc) == (78, 1), run_err
    assert run_err == check_err  # the very same words
    assert run_err.startswith(f"edgekit: error: {config}: ") and says.format(**fill) in run_err
    assert run_err.count("\n") == 1 and "Traceback" not in run_err


# --- each kind of problem names its key and says what to write --------------------------------


@pytest.mark.parametrize("patch,rule,key,fix", [
    (None, {"enter": 1.5}, "rules[0].enter", "between 0 and 1, e.g. 0.5"),
    (None, {"enter": "high"}, "rules[0].enter", 'got "high"'),
    (None, {"enter": 0.4, "release": 0.6}, "rules[0].release", "must not be above enter (0.4)"),
    (None, {"release": 0.7}, "rules[0].release", "must not be above enter (0.5)"),  # against the default
    (None, {"k": 3, "n": 2}, "rules[0].k", "must not exceed n (2)"),
    (None, {"n": 0}, "rules[0].n", "1 and 100"),
    (None, {"smoothing": "median"}, "rules[0].smoothing", '"k_of_n" or "mean" or "none"'),
    (None, {"smoothing": "mean", "k": 2, "n": 3}, "rules[0].k", 'only applies to smoothing = "k_of_n"'),
    (None, {"min_duration": -1}, "rules[0].min_duration", "e.g. 1.0"),
    (None, {"hold": True}, "rules[0].hold", "got true"),
    (None, {"mqtt": "yes"}, "rules[0].mqtt", "true or false"),
    (None, {"name": "smoke alarm"}, "rules[0].name", 'e.g. "smoke_alarm"'),
    (None, {"labels": []}, "rules[0].labels", 'e.g. labels = ["alarm"]'),
    (None, {"gpio": {"pin": 40}}, "rules[0].gpio.pin", 'such as "GPIO17"'),
    (None, {"gpio": {"pin": "BOARD6"}}, "rules[0].gpio.pin", "power or ground pin"),
    (None, {"gpio": {"active_high": False}}, "rules[0].gpio.pin", "is required"),
    (None, {"gpio": {"pin": 17, "mode": "toggle"}}, "rules[0].gpio.mode", '"level" or "pulse"'),
    (None, {"gpio": {"pin": 17, "pulse_seconds": 2}}, "rules[0].gpio.pulse_seconds", 'mode = "pulse"'),
    (None, {"gpio": 17}, "rules[0].gpio", "[rules.gpio]"),
    ({"model": {"device": "tpu"}}, None, "model.device", "use cpu, cpu:N"),
    ({"model": {"frontend": "fast"}}, None, "model.frontend", '"fixed" or "float"'),
    ({"model": {"fallback": "gpu"}}, None, "model.fallback", '"cpu"'),
    ({"model": {"labels": "/no/such/labels.csv"}}, None, "model.labels", "no such file"),
    ({"model": {"model": "/no/such/model.tflite"}}, None, "model.model", "no such file"),
    ({"audio": {"hop_seconds": 0.125}}, None, "audio.hop_seconds", "multiple of 0.01"),
    ({"audio": {"hop_seconds": 2}}, None, "audio.hop_seconds", "between 0.01 and 0.96"),
    ({"audio": {"speed": "fast"}}, None, "audio.speed", '"realtime" or "max"'),
    ({"audio": {"min_dbfs": 3}}, None, "audio.min_dbfs", "or false to turn the gate off"),
    ({"audio": {"rate": 44100.5}}, None, "audio.rate", "e.g. 48000"),
    ({"audio": {"device": -1}}, None, "audio.device", "python -m sounddevice"),
    ({"audio": {"source": "no_such_file.wav"}}, None, "audio.source", '"mic", or the path'),
    ({"gpio": {"pin_factory": "wiringpi"}}, None, "gpio.pin_factory", '"lgpio"'),
    ({"mqtt": {"port": 1883}}, None, "mqtt.host", "is required"),
    ({"mqtt": {"host": "h", "port": 70000}}, None, "mqtt.port", "between 1 and 65535"),
    ({"mqtt": {"host": "h", "qos": 3}}, None, "mqtt.qos", "0, 1 or 2"),
    ({"mqtt": {"host": "h", "tls": True, "ca_certs": "/no/ca.pem"}}, None, "mqtt.ca_certs", "no such file"),
    ({"mqtt": {"host": "h", "password": "p"}}, None, "mqtt.password", "add username"),
    ({"mqtt": {"host": "h", "device_id": "a/b"}}, None, "mqtt.device_id", 'without "/"'),
    ({"mqtt": {"host": "h", "topic_prefix": "home/#"}}, None, "mqtt.topic_prefix", 'without "+", "#"'),
    ({"log": {"max_bytes": 10}}, None, "log.path", "is required"),
    ({"log": "events.jsonl"}, None, "log", "[log]"),
    ({"rules": {"name": "x"}}, None, "rules", "[[rules]]"),
    ({"rules": []}, None, "rules", "add at least one [[rules]]"),
])
def test_each_problem_names_its_key_and_a_fix(patch, rule, key, fix):
    message = problems(patch, rule=rule)[0]
    assert message.startswith(key + ":") or message.startswith(key + " (rule "), message
    assert fix in message


def test_unknown_keys_suggest_the_right_one():
    assert one_problem({"audio": {"hop": 0.1}}) == "unknown key audio.hop; did you mean audio.hop_seconds?"
    assert one_problem(rule={"min_duraton": 1}) == \
        'unknown key rules[0].min_duraton (rule "smoke"); did you mean rules[0].min_duration?'
    assert one_problem({"hop_seconds": 0.1}) == \
        "unknown key hop_seconds; did you mean audio.hop_seconds? put it under [audio]"
    assert one_problem({"modle": {}}) == "unknown section [modle]; did you mean [model]?"
    assert "known keys: " in one_problem({"log": {"path": "x", "zzz": 1}})


def test_all_problems_are_reported_together():
    with pytest.raises(ConfigError) as info:
        parse_config({"audio": {"hop_seconds": 0.125, "speed": "fast"},
                      "rules": [{"name": "a", "labels": ["Dog"], "enter": 2},
                                {"name": "a", "labels": ["Cat"], "gpio": {"pin": 17}},
                                {"name": "b", "labels": ["Bark"], "gpio": {"pin": "BOARD11"}}],
                      "mqtt": {"host": "h", "qos": 9}}, source="my.toml")
    lines = str(info.value).splitlines()
    assert lines[0] == "my.toml: 6 problems:"
    assert [ln.split(":")[0].strip() for ln in lines[1:]] == [
        "audio.hop_seconds", "audio.speed", 'rules[0].enter (rule "a")', 'rules[1].name (rule "a")',
        'rules[2].gpio.pin (rule "b")', "mqtt.qos"]
    assert 'GPIO17 is already driven by rules[1] ("a")' in lines[5]  # BOARD11 is GPIO17


def test_a_single_problem_is_one_line():
    with pytest.raises(ConfigError, match=r"^config: rules\[0\]\.enter \(rule \"smoke\"\): must be a number"):
        parse_config({"rules": [{"name": "smoke", "labels": ["x"], "enter": 7}]})


# --- labels and groups ------------------------------------------------------------------------


def test_unknown_labels_suggest_real_names(yamnet_labels):
    assert one_problem(rule={"labels": ["smoke alarm"]}, labels=yamnet_labels).endswith(
        'unknown label or group "smoke alarm"; did you mean "Smoke detector, smoke alarm"?')
    assert 'did you mean "Glass"' in one_problem(rule={"labels": ["glas"]}, labels=yamnet_labels)
    assert "did you mean" not in one_problem(rule={"labels": ["xyzzy"]}, labels=yamnet_labels)
    assert suggest_labels("fire alarms", yamnet_labels)[0] == "Fire alarm"
    assert suggest_labels("SMOKE DETECTER", yamnet_labels) == ["Smoke detector, smoke alarm"]


def test_group_members_are_checked_where_they_are_written(yamnet_labels):
    found = problems({"groups": {"alarm": ["Fire alarm", "smoke alarm"]}}, rule={"labels": ["alarm"]},
                     labels=yamnet_labels)
    assert found == ('groups.alarm[1]: unknown label "smoke alarm"; did you mean "Smoke detector, smoke alarm"?',)
    assert problems({"groups": {"alarm": []}})[0].startswith("groups.alarm: must be a list of label names")


def test_labels_match_case_insensitively_and_groups_expand(yamnet_labels):
    config = parse_config({"groups": {"alarm": ["Smoke detector, smoke alarm", "fire ALARM", "Alarm"]},
                           "rules": [{"name": "a", "labels": ["alarm", "SIREN", "Fire alarm"]},
                                     {"name": "b", "labels": "Dog"}]}, labels=yamnet_labels)
    # "alarm" is the group (exact group names win over labels); names come back as the model spells them.
    assert config.rules[0].labels == ("Smoke detector, smoke alarm", "Fire alarm", "Alarm", "Siren")
    assert config.rules[1].labels == ("Dog",)


def test_without_labels_names_are_taken_as_written():
    config = parse_config({"groups": {"g": ["Foo", "Bar"]}, "rules": [{"name": "a", "labels": ["g", "Baz"]}]})
    assert config.rules[0].labels == ("Foo", "Bar", "Baz")


# --- values -----------------------------------------------------------------------------------


def test_defaults_and_conversions(tmp_path, audio_dir):
    shutil.copy(audio_dir / "dog.wav", tmp_path)
    path = tmp_path / "edgekit.toml"
    path.write_text("""
[model]
device = "CPU:4"
[audio]
source = "dog.wav"          # relative to this file
device = "2"
min_dbfs = false
hop_seconds = 0.1
[[rules]]
name = "dog"
labels = ["Dog"]
[mqtt]
host = "broker"
tls = true
[log]
path = "log/events.jsonl"
""")
    config = load_config(path)
    assert config.model.device == "cpu:4" and config.model.frontend == "fixed"
    assert config.audio.source == str(tmp_path / "dog.wav") and config.audio.device == 2
    assert config.audio.min_dbfs is None and config.audio.hop_seconds == pytest.approx(0.1)
    assert config.mqtt.port == 8883 and config.mqtt.qos == 1  # TLS brings its own default port
    assert config.log.path == str(tmp_path / "log" / "events.jsonl")
    rule = config.rules[0]
    assert (rule.enter, rule.release, rule.smoothing, rule.k, rule.n, rule.gpio) == (0.5, 0.3, "k_of_n", 1, 1, None)


# --- files ------------------------------------------------------------------------------------


def test_toml_syntax_error_gives_line_and_column(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[model]\nmodel = "yamnet\n')
    with pytest.raises(ConfigError, match=r"bad\.toml: TOML syntax error: .*line 2, column 16"):
        load_config(path)


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    (tmp_path / "latin1.toml").write_bytes(b'# caf\xe9\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path / "latin1.toml")


def test_cli_check_reports_problems_without_a_traceback(main, no_models, tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('[audio]\nhop = 0.1\n[[rules]]\nname = "x"\nlabels = ["Dog"]\nenter = 2\n')
    assert main(["config", "check", str(path)]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out
    assert out.err.splitlines() == [
        f"edgekit: error: {path}: 2 problems:",
        "  unknown key audio.hop; did you mean audio.hop_seconds?",
        '  rules[0].enter (rule "x"): must be a number between 0 and 1, e.g. 0.5, got 2',
    ]
    path.write_text("[model\n")
    assert main(["config", "check", str(path)]) == 1
    assert "TOML syntax error" in capsys.readouterr().err
    missing = tmp_path / "nope.toml"
    assert main(["config", "check", str(missing)]) == 1
    assert capsys.readouterr().err.strip() == \
        f"edgekit: error: {missing}: no such config file; start from systemd/edgekit.toml"
