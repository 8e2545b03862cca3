"""The ``edgekit`` command: parse, call, print. Each subcommand lives in ``edgekit.commands``.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Errors derived from :class:`EdgekitError` are printed on one line, with no traceback. Exit status:
2 for a bad option or value (argparse's own convention, so scripts can tell usage from failure),
1 for anything else that went wrong; ``run`` has its own (78 for a bad config, see run.py).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings

from edgekit import __version__
from edgekit.errors import ConfigError, DeviceError, EdgekitError, EdgekitWarning

EX_USAGE = 2  # what argparse exits with for an option it cannot parse
# Errors in what the user asked for (an option's value, a device string), whichever check finds them.
USAGE_ERRORS = (ConfigError, DeviceError)

# name -> module under edgekit.commands; imported lazily so `edgekit --help` stays fast.
COMMANDS = {
    "classify": "classify",
    "doctor": "doctor",
    "version": "doctor",
    "macs": "macs",
    "config": "config",
    "run": "run",
    "devices": "devices",
    "service": "service",
    "bench": "bench",
    "models": "models",
    "sounds": "sounds",
    "evaluate": "evaluate",
    "calibrate": "calibrate",
    "soundscape": "soundscape",
    "record": "record",
    "web": "web",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgekit",
        description="Sound-event detection on a Raspberry Pi, on the CPU or a Coral Edge TPU.",
    )
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f".commands.{module_name}", __package__)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    _verbose_everywhere(parser)
    return parser


def subparsers(parser: argparse.ArgumentParser):
    """(name, parser, help) of every subcommand below ``parser``, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, p in action.choices.items():
                yield name, p, helps.get(name)
                yield from subparsers(p)


def _verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    # `edgekit run -v` as well as `edgekit -v run`. SUPPRESS as the default, so a subcommand that
    # was not given -v leaves the top level's value alone.
    for _name, p, _help in subparsers(parser):
        if "-v" not in p._option_string_actions:
            p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                           help="show debug logging (as `edgekit -v`)")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # Our own warnings are messages for the user, not for a developer: one line, no source path.
    if issubclass(category, EdgekitWarning):
        print(f"edgekit: warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    args_given = sys.argv[1:] if argv is None else argv
    if next((a for a in args_given if not a.startswith("-")), None) == "run":
        # Before the imports below: a SIGHUP or SIGTERM in the daemon's first moments is kept
        # for the service to act on, instead of killing it (exit 129/143).
        from edgekit.daemon import signals

        signals.hold()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="edgekit: %(levelname)s: %(message)s",
    )
    warnings.showwarning = _show_warning
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except USAGE_ERRORS as exc:
        print(f"edgekit: error: {exc}", file=sys.stderr)
        return EX_USAGE
    except EdgekitError as exc:
        print(f"edgekit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
