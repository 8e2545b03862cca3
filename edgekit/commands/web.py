"""edgekit web: the status page, served by a companion process (the daemon keeps no socket)."""

from __future__ import annotations

import logging
import signal
import sys
import threading

EX_CONFIG = 78
HELP = "the status page: what it hears now, events with clips, review (a companion to `edgekit run`)"


def add_arguments(p) -> None:
    p.add_argument("--config", help="the daemon's TOML config (its [web], [log] and [clips] sections)")
    p.add_argument("--listen", metavar="HOST:PORT", help="address to serve on (default [web] listen, "
                                                         "127.0.0.1:8470); beyond loopback a password is required")
    p.add_argument("--hash-password", action="store_true",
                   help="read a password on stdin and print the [web] password_hash line for the config")


def run(args) -> int:
    if args.hash_password:
        return _hash_password()
    if not args.config:
        print("edgekit: error: --config is required (the daemon's config, e.g. /etc/edgekit/edgekit.toml)",
              file=sys.stderr)
        return 2
    from edgekit.daemon.config import load_config
    from edgekit.daemon.config.sections import parse_listen
    from edgekit.daemon.state import LIVE_SOCKET, state_dir
    from edgekit.errors import ConfigError
    from edgekit.web.auth import is_loopback
    from edgekit.web.live import LiveReceiver
    from edgekit.web.server import App, make_server

    root = logging.getLogger()
    if root.level > logging.INFO and not args.verbose:
        root.setLevel(logging.INFO)
    try:
        cfg = load_config(args.config)
        host, port = parse_listen(args.listen or cfg.web.listen)
    except ConfigError as exc:
        print(f"edgekit: error: {exc}", file=sys.stderr)
        return EX_CONFIG
    if not is_loopback(host) and not cfg.web.password_hash:
        print(f"edgekit: error: listening on {host}:{port} (beyond this machine) needs a password; run "
              f"`edgekit web --hash-password` and put the line it prints under [web] in {args.config}, "
              f"or listen on 127.0.0.1", file=sys.stderr)
        return EX_CONFIG
    state = state_dir(cfg)
    try:
        state.mkdir(parents=True, exist_ok=True)
        live = LiveReceiver(state / LIVE_SOCKET) if cfg.web.live else None
        app = App(cfg, state, host, port, live)
        server = make_server(app)
    except OSError as exc:
        print(f"edgekit: error: cannot serve on {host}:{port} or use {state}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1

    def stop(*_):
        server.stopping = True
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("edgekit.web").info("status page on http://%s:%d/ (state %s)", shown, server.server_address[1],
                                          state)
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=1.0)
    finally:
        server.server_close()
        if live is not None:
            live.close()
    return 0


def _hash_password() -> int:
    import getpass

    from edgekit.web.auth import hash_password

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        print("edgekit: error: use a password of at least 8 characters", file=sys.stderr)
        return 2
    print(f'password_hash = "{hash_password(password)}"')
    return 0
