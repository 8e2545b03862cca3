"""Where the service keeps what it writes besides the event log: clips, reviews, the live socket.

One answer for the daemon and for ``edgekit web``: the event log's folder (the example config's
/var/lib/edgekit, systemd's StateDirectory=), else ``$STATE_DIRECTORY``, else /var/lib/edgekit.
An interactive run that may not write there uses the user's state directory, as the event log
does (:func:`edgekit.actions.eventlog.interactive_fallback`); under systemd there is no fallback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from edgekit.actions.eventlog import interactive_fallback

LIVE_SOCKET = "live.sock"  # the companion binds it; the daemon only sends to it


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def state_dir(config, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if config.log is not None:
        wanted = Path(config.log.path).expanduser().parent
    elif env.get("STATE_DIRECTORY"):
        wanted = Path(env["STATE_DIRECTORY"].split(":")[0])
    else:
        wanted = Path("/var/lib/edgekit")
    if _writable(wanted):
        return wanted
    fallback = interactive_fallback(env)
    return fallback if fallback is not None else wanted
