"""The daemon's TOML config -> a validated, frozen :class:`~edgekit.daemon.settings.Config`.

Everything is checked before anything starts, and every problem is collected, so one run of
``edgekit config check`` lists them all. Each problem names its key (``rules[0].enter``) and
says how to fix it. Relative paths are taken relative to the config file, not to whatever
directory the daemon happens to start in.

Each field's type, default, range and hint are declared once, on the settings classes
(:func:`edgekit.schema.setting`); :mod:`.reader` reads any table against them, :mod:`.sections`
and :mod:`.rules` add what involves more than one field, and :mod:`.pins` knows the header.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Sequence

from edgekit.daemon.config import sections
from edgekit.daemon.config.reader import Table
from edgekit.daemon.config.rules import Names, groups, rules, suggest_labels
from edgekit.daemon.settings import Config
from edgekit.errors import ConfigError

__all__ = ["InvalidConfig", "load_config", "parse_config", "read_toml", "suggest_labels"]
SECTIONS = tuple(sections.SECTION_TYPES)


class InvalidConfig(ConfigError):
    """Every problem found in one config, one per line; ``problems`` holds them as a tuple."""

    def __init__(self, source: str, problems: Sequence[str]):
        self.source, self.problems = source, tuple(problems)
        if len(problems) == 1:
            super().__init__(f"{source}: {problems[0]}")
        else:
            super().__init__(f"{source}: {len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems))


def load_config(path: str | os.PathLike, labels: Sequence[str] | None = None) -> Config:
    """Read and validate a config file; ``labels``: the model's names, to check rule labels."""
    return parse_config(read_toml(path), labels, source=str(path), base_dir=Path(path).absolute().parent)


def read_toml(path: str | os.PathLike) -> dict:
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file; start from systemd/edgekit.toml") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory; give the path of a .toml file") from None
    except PermissionError:
        raise ConfigError(f"{p}: permission denied; check the file's owner and mode") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the config file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message carries "(at line L, column C)"
        raise ConfigError(f"{p}: TOML syntax error: {exc}") from None


def parse_config(data: dict, labels: Sequence[str] | None = None, source: str = "config",
                 base_dir: str | os.PathLike | None = None) -> Config:
    problems: list[str] = []
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    top = Table(data, "", problems, sections=sections.SECTION_TYPES)
    model = sections.model(top.table("model", sections.ModelSettings), base)
    audio = sections.audio(top.table("audio", sections.AudioSettings), base)
    named = groups(top.table("groups", free=True))
    names = Names(labels, named)
    for gname, members in named.items():
        for i, member in enumerate(members):
            if (why := names.learned_in_labels(member)) is not None:
                problems.append(f"groups.{gname}[{i}]: {why}")
            elif names.label(member) is None:
                problems.append(f"groups.{gname}[{i}]: {names.unknown(member, groups=False)}")
    found = rules(top.get("rules"), problems, names, base)
    gpio = sections.gpio(top.table("gpio", sections.GpioSettings), base)
    mqtt = sections.mqtt(top.table("mqtt", sections.MqttSettings, optional=True), base)
    log = sections.log(top.table("log", sections.EventLogSettings, optional=True), base)
    clips = sections.clips(top.table("clips", sections.ClipSettings), base)
    web = sections.web(top.table("web", sections.WebSettings), base)
    top.finish()
    if problems:
        raise InvalidConfig(source, problems)
    used = tuple(dict.fromkeys(x for r in found for x in r.sounds))
    return Config(model=model, audio=audio, rules=tuple(found), gpio=gpio, mqtt=mqtt, log=log, clips=clips, web=web,
                  source_path=source,
                  sounds=used)
