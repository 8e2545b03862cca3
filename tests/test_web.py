"""The status page's API (`edgekit web`): what it serves, and every refusal.

A real server on a free loopback port, over real HTTP (http.client), reading an event log and a
FLAC clip as the daemon writes them, and the live feed over a real Unix datagram socket.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgekit.daemon.config import parse_config
from edgekit.daemon.live import LiveFeed
from edgekit.errors import ConfigError
from edgekit.web import auth
from edgekit.web.live import LiveReceiver
from edgekit.web.server import App, make_server

EVENT_ID = "01a23cdf-f9a0-78ba-9917-f0cd13ff4c76"
OTHER_ID = "01a23cdf-f9a0-78ba-9917-f0cd13ff4c77"


def config(state: Path, **web):
    data = {"model": {"model": "yamnet"}, "rules": [{"name": "smoke_alarm", "labels": ["Smoke detector, smoke alarm"]}],
            "log": {"path": str(state / "events.jsonl")}, "web": web}
    return parse_config(data, source="test")


def write_event(state: Path, event_id: str = EVENT_ID, clip: bool = True) -> bytes:
    recs = [{"kind": "start", "rule": "smoke_alarm", "label": "Smoke detector, smoke alarm", "score": 0.9,
             "peak": 0.9, "t_wall": 1796317641.12, "stream_time": 1.455, "duration": 0.0, "id": event_id,
             "clip": None, "clip_withheld": None, "time": "2026-12-03T17:07:21.120+00:00"},
            {"kind": "end", "rule": "smoke_alarm", "label": "Smoke detector, smoke alarm", "score": 0.97,
             "peak": 0.97, "t_wall": 1796317651.18, "stream_time": 11.5, "duration": 10.08, "id": event_id,
             "clip": f"{event_id}.flac" if clip else None, "clip_withheld": None if clip else "speech heard",
             "time": "2026-12-03T17:07:31.185+00:00"}]
    with open(state / "events.jsonl", "a") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    if clip:
        (state / "clips").mkdir(exist_ok=True)
        t = np.arange(16000 * 3) / 16000
        sf.write(state / "clips" / f"{event_id}.flac", (0.3 * np.sin(2 * np.pi * 3100 * t) * 32767).astype(np.int16),
                 16000, format="FLAC")
    return (state / "events.jsonl").read_bytes()


class Client:
    def __init__(self, port: int, host_header: str | None = None):
        self.port, self.host_header = port, host_header
        self.cookie = None

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = {"Host": self.host_header or f"127.0.0.1:{self.port}"}
        if self.cookie:
            h["Cookie"] = self.cookie
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        cookie = r.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";")[0]
        c.close()
        return r, data

    def json(self, method, path, body=None, headers=None):
        r, data = self.request(method, path, body, headers)
        return r.status, json.loads(data) if data else None


@pytest.fixture
def served(tmp_path):
    """(app, port, event log bytes): a server on loopback with one event and its clip."""
    state = tmp_path / "state"
    state.mkdir()
    log_bytes = write_event(state)
    made = []

    def start(host="127.0.0.1", **web):
        cfg = config(state, **web)
        live = LiveReceiver(state / "live.sock")
        app = App(cfg, state, host, 0, live)
        server = make_server(app)
        app.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        made.append((server, live))
        return app, app.port, log_bytes

    yield start
    for server, live in made:
        server.stopping = True
        server.shutdown()
        server.server_close()
        live.close()


def review_path(event_id=EVENT_ID):
    return f"/api/events/{event_id}/review"


def with_session(port) -> tuple[Client, str]:
    c = Client(port)
    status, s = c.json("GET", "/api/session")
    assert status == 200 and s["authenticated"] and c.cookie
    return c, s["csrf"]


# -- reads -------------------------------------------------------------------------------------------
def test_events_list_joins_start_and_end_with_clip_url(served):
    _, port, _ = served()
    status, body = Client(port).json("GET", "/api/events")
    assert status == 200
    (ev,) = body["events"]
    assert ev["id"] == EVENT_ID and ev["rule"] == "smoke_alarm" and ev["label"] == "Smoke detector, smoke alarm"
    assert ev["start"].startswith("2026-12-03T17:07:21") and ev["end"].startswith("2026-12-03T17:07:31")
    assert ev["stream_time"] == 1.455 and ev["duration"] == pytest.approx(10.08) and ev["score"] == 0.97
    assert ev["clip"] == f"/api/events/{EVENT_ID}/clip" and ev["clip_withheld"] is None and ev["review"] is None


def test_withheld_clip_says_why(served, tmp_path):
    write_event(tmp_path / "state", OTHER_ID, clip=False)
    _, port, _ = served()
    events = {e["id"]: e for e in Client(port).json("GET", "/api/events")[1]["events"]}
    assert events[OTHER_ID]["clip"] is None and events[OTHER_ID]["clip_withheld"] == "speech heard"
    assert Client(port).request("GET", f"/api/events/{OTHER_ID}/clip")[0].status == 404


def test_clip_is_served_whole_and_by_range(served, tmp_path):
    _, port, _ = served()
    whole = (tmp_path / "state" / "clips" / f"{EVENT_ID}.flac").read_bytes()
    r, data = Client(port).request("GET", f"/api/events/{EVENT_ID}/clip")
    assert r.status == 200 and r.getheader("Content-Type") == "audio/flac" and data == whole
    r, data = Client(port).request("GET", f"/api/events/{EVENT_ID}/clip", headers={"Range": "bytes=4-99"})
    assert r.status == 206 and data == whole[4:100] and r.getheader("Content-Range") == f"bytes 4-99/{len(whole)}"


def test_spectrogram_is_a_png(served):
    _, port, _ = served()
    r, data = Client(port).request("GET", f"/api/events/{EVENT_ID}/spectrogram.png")
    assert r.status == 200 and r.getheader("Content-Type") == "image/png" and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_page_and_assets_are_local_and_small(served):
    _, port, _ = served()
    total = 0
    for path in ("/", "/static/app.js", "/static/style.css"):
        r, data = Client(port).request("GET", path)
        assert r.status == 200 and "default-src 'none'" in r.getheader("Content-Security-Policy")
        assert b"http://" not in data and b"https://" not in data  # nothing loaded from elsewhere
        total += len(data)
    assert total < 300_000


@pytest.mark.parametrize("path", [
    "/api/events/..%2F..%2F..%2Fetc%2Fpasswd/clip", "/api/events/../../etc/passwd/clip",
    f"/api/events/{EVENT_ID}%2F..%2F..%2Fevents.jsonl/clip", "/api/events/not-an-id/clip",
    "/api/events/%2e%2e/spectrogram.png"])
def test_clip_urls_cannot_leave_the_clips_folder(served, path):
    _, port, _ = served()
    r, data = Client(port).request("GET", path)
    assert r.status == 404 and b"root:" not in data and b"smoke" not in data


def test_a_symlink_out_of_the_clips_folder_is_not_followed(served, tmp_path):
    secret = tmp_path / "secret.flac"
    secret.write_bytes(b"not for the page")
    os.symlink(secret, tmp_path / "state" / "clips" / f"{OTHER_ID}.flac")
    _, port, _ = served()
    r, data = Client(port).request("GET", f"/api/events/{OTHER_ID}/clip")
    assert r.status == 404 and b"not for the page" not in data


def test_a_foreign_host_header_is_refused_on_loopback(served):
    _, port, _ = served()
    r, _ = Client(port, host_header=f"evil.example:{port}").request("GET", "/api/events")
    assert r.status == 403


# -- writes ------------------------------------------------------------------------------------------
def test_review_is_saved_beside_the_log_never_in_it(served, tmp_path):
    _, port, log_bytes = served()
    c, csrf = with_session(port)
    status, body = c.json("POST", review_path(), {"verdict": "false_alarm", "note": "the oven"},
                          {"X-CSRF-Token": csrf, "Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"})
    assert status == 200 and body["review"]["verdict"] == "false_alarm"
    state = tmp_path / "state"
    assert (state / "events.jsonl").read_bytes() == log_bytes
    (line,) = (state / "reviews.jsonl").read_text().splitlines()
    assert json.loads(line)["note"] == "the oven"
    ev = Client(port).json("GET", "/api/events")[1]["events"][0]
    assert ev["review"]["verdict"] == "false_alarm" and ev["review"]["note"] == "the oven"


def test_review_without_a_session_is_401(served, tmp_path):
    _, port, _ = served()
    status, _ = Client(port).json("POST", review_path(), {"verdict": "correct"})
    assert status == 401
    assert not (tmp_path / "state" / "reviews.jsonl").exists()


def test_review_without_the_csrf_token_is_403(served):
    _, port, _ = served()
    c, csrf = with_session(port)
    assert c.json("POST", review_path(), {"verdict": "correct"})[0] == 403
    assert c.json("POST", review_path(), {"verdict": "correct"}, {"X-CSRF-Token": csrf[:-2] + "xx"})[0] == 403


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Sec-Fetch-Site": "same-site"}, {"Origin": "null"}])
def test_cross_site_review_is_403_even_with_the_token(served, headers, tmp_path):
    _, port, _ = served()
    c, csrf = with_session(port)
    assert c.json("POST", review_path(), {"verdict": "correct"}, {"X-CSRF-Token": csrf, **headers})[0] == 403
    assert not (tmp_path / "state" / "reviews.jsonl").exists()


@pytest.mark.parametrize("body,status", [({"verdict": "maybe"}, 400), ({"verdict": None}, 400), ([], 400),
                                         ({"verdict": "correct", "note": 5}, 400),
                                         ({"verdict": "correct", "note": "x" * 1001}, 400),
                                         ({"verdict": "correct", "extra": 1}, 400), (b"{not json", 400),
                                         (b"x" * 20000, 413)])
def test_bad_review_bodies_are_refused(served, body, status, tmp_path):
    _, port, _ = served()
    c, csrf = with_session(port)
    assert c.json("POST", review_path(), body, {"X-CSRF-Token": csrf})[0] == status
    assert not (tmp_path / "state" / "reviews.jsonl").exists()


def test_review_of_an_unknown_or_malformed_event_is_404(served):
    _, port, _ = served()
    c, csrf = with_session(port)
    assert c.json("POST", review_path(OTHER_ID), {"verdict": "correct"}, {"X-CSRF-Token": csrf})[0] == 404
    assert c.json("POST", review_path("../../x"), {"verdict": "correct"}, {"X-CSRF-Token": csrf})[0] == 404


def test_the_api_token_writes_without_a_session(served, tmp_path):
    app, port, _ = served()
    token = (tmp_path / "state" / "web-token").read_text().strip()
    assert token == app.token and (tmp_path / "state" / "web-token").stat().st_mode & 0o077 == 0
    assert Client(port).json("POST", review_path(), {"verdict": "correct"},
                             {"Authorization": f"Bearer {token}"})[0] == 200
    assert Client(port).json("POST", review_path(), {"verdict": "correct"},
                             {"Authorization": "Bearer wrong"})[0] == 401


# -- a password, beyond loopback -----------------------------------------------------------------------
def test_beyond_loopback_reads_and_writes_need_the_password(served):
    hashed = auth.hash_password("correct horse")
    _, port, _ = served(host="0.0.0.0", password_hash=hashed)
    c = Client(port, host_header=f"pi.local:{port}")
    assert c.json("GET", "/api/events")[0] == 401
    assert c.json("GET", "/api/session")[1]["authenticated"] is False
    assert c.json("POST", review_path(), {"verdict": "correct"})[0] == 401
    assert c.json("POST", "/api/login", {"password": "wrong horse"})[0] == 401
    assert c.json("POST", "/api/login", {"password": "correct horse"},
                  {"Origin": "http://evil.example"})[0] == 403
    status, body = c.json("POST", "/api/login", {"password": "correct horse"})
    assert status == 200 and c.cookie
    assert c.json("GET", "/api/events")[0] == 200
    assert c.json("POST", review_path(), {"verdict": "correct"}, {"X-CSRF-Token": body["csrf"]})[0] == 200


def test_password_hash_is_salted_scrypt():
    a, b = auth.hash_password("s3cret-pass"), auth.hash_password("s3cret-pass")
    assert a.startswith("scrypt$") and a != b and "s3cret" not in a
    assert auth.check_password("s3cret-pass", a) and not auth.check_password("s3cret-pasS", a)
    assert not auth.check_password("x", "scrypt$garbage")


def test_non_loopback_without_a_password_exits_78(tmp_path, capsys):
    from edgekit.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[model]\nmodel = "yamnet"\n[log]\npath = "{tmp_path}/events.jsonl"\n'
                   '[[rules]]\nname = "smoke"\nlabels = ["Smoke detector, smoke alarm"]\n')
    assert main(["web", "--config", str(cfg), "--listen", "0.0.0.0:8470"]) == 78
    err = capsys.readouterr().err
    assert "needs a password" in err and "edgekit web --hash-password" in err and "[web]" in err


def test_hash_password_prints_the_config_line(monkeypatch, capsys):
    import io

    from edgekit.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["web", "--hash-password"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith('password_hash = "scrypt$')
    assert auth.check_password("a long enough password", line.split('"')[1])


@pytest.mark.parametrize("web,key", [({"listen": "nowhere"}, "web.listen"), ({"listen": "1.2.3.4:99999"}, "web.listen"),
                                     ({"password_hash": "hunter2"}, "web.password_hash"), ({"lsten": "x"}, "web.lsten")])
def test_bad_web_settings_are_config_errors(tmp_path, web, key):
    with pytest.raises(ConfigError) as exc:
        config(tmp_path, **web)
    assert key in str(exc.value) and "hunter2" not in str(exc.value)


# -- the live feed -----------------------------------------------------------------------------------
def test_live_feed_reaches_status_sse_and_metrics(served, tmp_path):
    app, port, _ = served()
    feed = LiveFeed(tmp_path / "state" / "live.sock")
    msg = {"v": 1, "time": time.time(), "stream_time": 3.0, "dbfs": -20.5, "gated": False,
           "top": [["Smoke detector, smoke alarm", 0.9]],
           "rules": [{"name": "smoke_alarm", "score": 0.8, "enter": 0.5, "release": 0.3, "active": True}],
           "model": "m.tflite", "device": "cpu", "frontend": "fixed", "hop": 0.1, "uptime": 3.0, "source": "file",
           "mic": "heard", "windows": 30, "gated_windows": 2, "inference_ms": 1.5, "dropped_blocks": 4,
           "overflows": 0, "events": {"smoke_alarm": 2}}
    feed.send(msg)
    deadline = time.monotonic() + 5
    while app.live.latest is None and time.monotonic() < deadline:
        time.sleep(0.01)
    status, body = Client(port).json("GET", "/api/status")
    assert body["daemon"] == "connected" and body["latest"]["dbfs"] == -20.5 and body["history"][-1][2] == [0.8]
    r, data = Client(port).request("GET", "/metrics")
    text = data.decode()
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    for line in ("edgekit_up 1", "edgekit_windows_total 30", 'edgekit_events_total{rule="smoke_alarm"} 2',
                 "edgekit_dropped_audio_blocks_total 4", "edgekit_microphone_heard 1", "edgekit_inference_seconds 0.0015"):
        assert line in text.splitlines(), line
    # The stream: the next message arrives as an SSE data line.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/api/live", headers={"Host": f"127.0.0.1:{port}"})
    r = conn.getresponse()
    assert r.getheader("Content-Type") == "text/event-stream"
    line = r.fp.readline()
    assert line.startswith(b"data: ") and json.loads(line[6:])["stream_time"] == 3.0
    feed.send({**msg, "stream_time": 3.1})
    r.fp.readline()
    assert json.loads(r.fp.readline()[6:])["stream_time"] == 3.1
    conn.close()
    feed.close()


def test_live_feed_never_blocks_without_a_reader_or_with_a_stuck_one(tmp_path):
    absent = LiveFeed(tmp_path / "nobody.sock")
    t0 = time.monotonic()
    for _ in range(1000):
        if absent.wanted():
            absent.send({"x": 1})
    assert absent.sent == 0 and absent.dropped == 1  # after a miss it builds nothing for a second
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stuck.bind(str(tmp_path / "stuck.sock"))  # bound, never read
    feed = LiveFeed(tmp_path / "stuck.sock")
    for _ in range(5000):
        feed.send({"pad": "x" * 500})
    assert feed.dropped > 0 and feed.sent > 0 and feed.sent + feed.dropped == 5000
    assert time.monotonic() - t0 < 30  # a blocking send would hang here forever (pytest-timeout)
    stuck.close()
