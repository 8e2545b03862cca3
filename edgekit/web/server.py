"""The companion's HTTP server: the page, the JSON API, the live stream and /metrics.

The standard library's threading HTTP server: one thread per connection (a Server-Sent Events
stream holds one), nothing to install on a Pi. Every response carries a strict
Content-Security-Policy (the page loads nothing from anywhere else). Routes:

    GET  /                              the page (assets are package data under static/)
    GET  /api/session                   {"csrf", "authenticated", ...}; on an open loopback page it starts a session
    POST /api/login                     {"password"} -> a session cookie
    GET  /api/status                    the latest window, the rules' recent scores, the daemon's facts
    GET  /api/events[?limit=N]          newest first
    GET  /api/events/{id}/clip          audio/flac (byte ranges for the player)
    GET  /api/events/{id}/spectrogram.png
    POST /api/events/{id}/review        {"verdict": "correct"|"false_alarm", "note": "..."}
    GET  /api/live                      text/event-stream, one message per window
    GET  /metrics                       Prometheus text format
"""

from __future__ import annotations

import gzip
import hmac
import json
import logging
import re
import threading
import time
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from edgekit.errors import ConfigError
from edgekit.web import auth
from edgekit.web.store import EventStore, valid_id

log = logging.getLogger(__name__)

STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/static/app.js": ("app.js", "text/javascript"),
          "/static/style.css": ("style.css", "text/css")}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
BODY_MAX = 16 * 1024
EVENT_PATH = re.compile(r"^/api/events/([^/]+)/(clip|spectrogram\.png|review)$")
SSE_KEEPALIVE = 15.0


@lru_cache(maxsize=None)
def static_file(name: str) -> bytes:
    return resources.files("edgekit.web").joinpath("static", name).read_bytes()


class App:
    """What the handlers share: the settings, the stores, the sessions."""

    def __init__(self, config, state: Path, host: str, port: int, live=None):
        self.config = config
        self.state = state
        self.host, self.port = host, port
        self.loopback = auth.is_loopback(host)
        self.password_hash = config.web.password_hash
        self.reads_open = self.loopback
        self.store = EventStore(Path(config.log.path) if config.log else None, state)
        self.live = live
        self.sessions = auth.Sessions()
        self.token = auth.api_token(state)
        self.started = time.time()
        self._login_lock = threading.Lock()
        self._png_lock = threading.Lock()
        self._png: dict[str, bytes] = {}

    def allowed_hosts(self) -> set[str]:
        names = {self.host, "localhost", "127.0.0.1", "[::1]"} if self.loopback else set()
        return {f"{h}:{self.port}" for h in names}

    def spectrogram(self, event_id: str, path: Path) -> bytes:
        from edgekit.web.spectrogram import spectrogram_png

        with self._png_lock:
            if event_id in self._png:
                return self._png[event_id]
        png = spectrogram_png(path)
        with self._png_lock:
            self._png[event_id] = png
            while len(self._png) > 32:  # bounded cache
                del self._png[next(iter(self._png))]
        return png

    def status(self) -> dict:
        live = self.live
        latest = live.latest if live is not None else None
        return {
            "daemon": "connected" if live is not None and live.connected() else "no live feed",
            "latest": latest,
            "history": live.recent() if live is not None else [],
            "rules": [{"name": r.name, "enter": r.enter, "release": r.release} for r in self.config.rules],
            "events_in_log": self.store.counts(),
            "companion_uptime": round(time.time() - self.started, 1),
        }

    def metrics(self) -> str:
        m = (self.live.latest if self.live is not None and self.live.connected() else None) or {}
        lines = []

        def metric(name, kind, help_, samples):
            lines.append(f"# HELP edgekit_{name} {help_}")
            lines.append(f"# TYPE edgekit_{name} {kind}")
            for labels, value in samples:
                lab = "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items()) + "}" if labels else ""
                lines.append(f"edgekit_{name}{lab} {value}")

        metric("up", "gauge", "1 while the daemon's live feed arrives.", [({}, int(bool(m)))])
        if m:
            metric("windows_total", "counter", "Windows scored since the daemon (re)built its pipeline.",
                   [({}, m.get("windows", 0))])
            metric("gated_windows_total", "counter", "Windows the volume gate skipped.", [({}, m.get("gated_windows", 0))])
            metric("inference_seconds", "gauge", "Mean model time per scored window.",
                   [({}, (m.get("inference_ms") or 0) / 1000)])
            metric("events_total", "counter", "Events started per rule since the daemon started.",
                   [({"rule": k}, v) for k, v in (m.get("events") or {}).items()])
            metric("dropped_audio_blocks_total", "counter", "Audio blocks the capture ring had no room for.",
                   [({}, m.get("dropped_blocks", 0))])
            metric("audio_overflows_total", "counter", "Input overflows PortAudio reported.", [({}, m.get("overflows", 0))])
            metric("microphone_heard", "gauge", "1 while the input is live and not all zeros.",
                   [({}, int(m.get("mic") == "heard"))])
            metric("level_dbfs", "gauge", "Level of the latest window.",
                   [({}, m["dbfs"] if m.get("dbfs") is not None else "-Inf")])
            metric("uptime_seconds", "gauge", "Seconds since the daemon started.", [({}, m.get("uptime", 0))])
            metric("rule_score", "gauge", "Each rule's smoothed score in the latest window.",
                   [({"rule": r["name"]}, r["score"] if r.get("score") is not None else 0) for r in m.get("rules", [])])
        return "\n".join(lines) + "\n"


def _esc(v) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Handler(BaseHTTPRequestHandler):
    server_version = "edgekit-web"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    app: App  # set on the subclass made by serve()

    def log_message(self, fmt, *args):  # the journal gets warnings, not every request
        log.debug("%s %s", self.address_string(), fmt % args)

    # -- responses -----------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        headers = dict(headers or {})
        # Text compresses 5-10x (the status's score history most): a phone on a weak link loads less.
        if (len(body) > 1024 and ctype.startswith(("text/", "application/json"))
                and "gzip" in self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj, allow_nan=False).encode(), "application/json", headers)

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    # -- who is asking -------------------------------------------------------------------------
    def _bearer(self) -> bool:
        h = self.headers.get("Authorization", "")
        return h.startswith("Bearer ") and hmac.compare_digest(h[7:].strip().encode(), self.app.token.encode())

    def _session_csrf(self) -> str | None:
        return self.app.sessions.csrf(auth.cookie_value(self.headers.get("Cookie")))

    def _host_ok(self) -> bool:
        allowed = self.app.allowed_hosts()
        if allowed and self.headers.get("Host") not in allowed:  # DNS rebinding onto a loopback page
            self._error(403, "unexpected Host header; open the page as http://127.0.0.1:PORT/")
            return False
        return True

    def _may_read(self) -> bool:
        if self.app.reads_open or self._bearer() or self._session_csrf():
            return True
        self._error(401, "log in first (POST /api/login with the password)")
        return False

    def _may_write(self) -> bool:
        if self._bearer():
            return True
        csrf = self._session_csrf()
        if csrf is None:
            self._error(401, "no session: load the page (or GET /api/session) first, or send "
                             "Authorization: Bearer <the token in web-token in the state directory>")
            return False
        why = auth.cross_site(self.headers, self.headers.get("Host"))
        if why is not None:
            self._error(403, f"cross-site request refused ({why})")
            return False
        sent = self.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(sent.encode(), csrf.encode()):
            self._error(403, "missing or wrong X-CSRF-Token (GET /api/session gives it)")
            return False
        return True

    def _body(self):
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = -1
        if not 0 <= n <= BODY_MAX:
            self._error(413, f"the body must be at most {BODY_MAX} bytes")
            return None
        try:
            return json.loads(self.rfile.read(n) or b"null")
        except ValueError:
            self._error(400, "the body is not JSON")
            return None

    # -- routes --------------------------------------------------------------------------------
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        try:
            self._get()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _get(self):
        if not self._host_ok():
            return
        path, _, query = self.path.partition("?")
        if path in STATIC:
            name, ctype = STATIC[path]
            return self._send(200, static_file(name), ctype)
        if path == "/api/session":
            return self._session()
        if not self._may_read():
            return
        if path == "/api/status":
            return self._json(200, self.app.status())
        if path == "/api/events":
            limit = 200
            m = re.search(r"(?:^|&)limit=(\d{1,4})(?:&|$)", query)
            if m:
                limit = max(1, min(5000, int(m.group(1))))
            return self._json(200, {"events": self.app.store.events(limit)})
        if path == "/api/live":
            return self._sse()
        if path == "/metrics":
            return self._send(200, self.app.metrics().encode(), "text/plain; version=0.0.4; charset=utf-8")
        m = EVENT_PATH.match(path)
        if m and m.group(2) != "review":
            event_id = m.group(1)
            if not valid_id(event_id):
                return self._error(404, "no such event (an id is a UUID)")
            clip = self.app.store.clip_path(event_id)
            if clip is None:
                return self._error(404, "this event has no clip")
            if m.group(2) == "clip":
                return self._clip(clip)
            try:
                png = self.app.spectrogram(event_id, clip)
            except ImportError:
                return self._error(501, "spectrograms need Pillow: pip install 'edgekit[web]'")
            return self._send(200, png, "image/png")
        self._error(404, "no such page")

    def _session(self):
        csrf = self._session_csrf()
        headers = {}
        if csrf is None and self.app.loopback and not self.app.password_hash:
            sid, csrf = self.app.sessions.new()
            headers["Set-Cookie"] = f"{auth.COOKIE}={sid}; HttpOnly; SameSite=Strict; Path=/"
        self._json(200, {"csrf": csrf, "authenticated": csrf is not None,
                         "password_required": bool(self.app.password_hash), "reads_open": self.app.reads_open},
                   headers)

    def _clip(self, path: Path):
        data = path.read_bytes()
        rng = re.match(r"^bytes=(\d*)-(\d*)$", self.headers.get("Range", ""))
        if rng and (rng.group(1) or rng.group(2)):
            a, b = rng.group(1), rng.group(2)
            start = int(a) if a else max(0, len(data) - int(b))
            end = min(len(data) - 1, int(b)) if a and b else len(data) - 1
            if start >= len(data) or start > end:
                return self._send(416, b"", "audio/flac", {"Content-Range": f"bytes */{len(data)}"})
            return self._send(206, data[start:end + 1], "audio/flac",
                              {"Content-Range": f"bytes {start}-{end}/{len(data)}", "Accept-Ranges": "bytes"})
        self._send(200, data, "audio/flac", {"Accept-Ranges": "bytes"})

    def _sse(self):
        live = self.app.live
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.close_connection = True
        seq = -1
        while not getattr(self.server, "stopping", False):
            if live is None:
                time.sleep(SSE_KEEPALIVE)
                self.wfile.write(b": no live feed\n\n")
                self.wfile.flush()
                continue
            new, msg = live.wait(seq, SSE_KEEPALIVE)
            if new == seq or msg is None:
                self.wfile.write(b": keep-alive\n\n")
            else:
                seq = new
                self.wfile.write(b"data: " + json.dumps(msg, allow_nan=False).encode() + b"\n\n")
            self.wfile.flush()

    def do_POST(self):
        try:
            self._post()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _post(self):
        if not self._host_ok():
            return
        path = self.path.partition("?")[0]
        if path == "/api/login":
            return self._login()
        m = EVENT_PATH.match(path)
        if not m or m.group(2) != "review":
            return self._error(404, "no such action")
        if not self._may_write():
            return
        event_id = m.group(1)
        if not valid_id(event_id) or self.app.store.event(event_id) is None:
            return self._error(404, "no such event")
        body = self._body()
        if body is None:
            return
        try:
            review = self.app.store.review(event_id, body)
        except ConfigError as exc:
            return self._error(400, str(exc))
        except OSError as exc:
            return self._error(507, f"cannot store the review: {exc.strerror or exc}")
        self._json(200, {"id": event_id, "review": review})

    def _login(self):
        why = auth.cross_site(self.headers, self.headers.get("Host"))
        if why is not None:
            return self._error(403, f"cross-site request refused ({why})")
        body = self._body()
        if body is None:
            return
        if not self.app.password_hash:
            return self._error(400, "no password is set; on loopback GET /api/session starts a session")
        password = body.get("password") if isinstance(body, dict) else None
        with self.app._login_lock:  # one guess at a time, each at scrypt's cost plus a pause on failure
            ok = isinstance(password, str) and auth.check_password(password, self.app.password_hash)
            if not ok:
                time.sleep(1.0)
        if not ok:
            return self._error(401, "wrong password")
        sid, csrf = self.app.sessions.new()
        self._json(200, {"csrf": csrf, "authenticated": True},
                   {"Set-Cookie": f"{auth.COOKIE}={sid}; HttpOnly; SameSite=Strict; Path=/"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    stopping = False


def make_server(app: App) -> Server:
    import socket

    handler = type("BoundHandler", (Handler,), {"app": app})
    Server.address_family = socket.AF_INET6 if ":" in app.host else socket.AF_INET
    return Server((app.host, app.port), handler)
