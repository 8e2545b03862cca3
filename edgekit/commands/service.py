"""edgekit service install: put the systemd unit, the Coral udev rules and the example config in place."""

from __future__ import annotations

HELP = "install the systemd service (unit, Coral udev rules, example config)"


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="service_command", metavar="ACTION")
    inst = sub.add_parser(
        "install", help="install edgekit.service, 60-edgetpu.rules and /etc/edgekit/edgekit.toml",
        description="Copy the systemd unit (its ExecStart= pointing at this edgekit), the Coral udev "
                    "rules and, when there is none yet, the example config under PREFIX; then run "
                    "groupadd/udevadm/systemctl daemon-reload (as root on a system booted with systemd) "
                    "or print those commands. An existing config is never overwritten.")
    inst.add_argument("--prefix", default="/", help="install under this root instead of / (an image, a test)")
    inst.add_argument("--dry-run", action="store_true", help="show what would be written and run; change nothing")
    inst.add_argument("--exec", dest="exec_path", metavar="PATH",
                      help="the edgekit executable for ExecStart= (default: this one, found via the "
                           "running script, the venv's bin/ or $PATH)")
    inst.add_argument("--source", metavar="DIR",
                      help="take the unit, rules and example config from DIR (default: the copies that "
                           "ship with edgekit)")
    p.set_defaults(_parser=p)


def run(args) -> int:
    if getattr(args, "service_command", None) != "install":
        args._parser.print_help()
        return 2
    from edgekit.daemon.install import install

    return install(prefix=args.prefix, exec_path=args.exec_path, dry_run=args.dry_run, source=args.source)
