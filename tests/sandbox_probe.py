"""What a process can reach: run under systemd with edgekit.service's sandbox by test_systemd_boot
(and without it, as the control). Standard library only: it runs on the container's own python3.

    python3 sandbox_probe.py HOST:PORT...   prints one JSON object
"""

import json
import os
import socket
import sys


def try_open(path: str) -> str:
    try:
        os.close(os.open(path, os.O_RDWR))
        return "open"
    except OSError as e:
        return e.strerror or type(e).__name__


def connect(host: str, port: int) -> str:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(3)  # a SYN dropped by IPAddressDeny= times out; nothing says "denied"
    try:
        s.connect((host, port))
        return "connected"
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    finally:
        s.close()


result = {"/dev/net/tun": try_open("/dev/net/tun"), "/dev/null": try_open("/dev/null")}
try:
    result["/home"] = sorted(os.listdir("/home"))
except OSError as e:
    result["/home"] = e.strerror
for spec in sys.argv[1:]:
    host, port = spec.rsplit(":", 1)
    result[spec] = connect(host, int(port))
print(json.dumps(result))
