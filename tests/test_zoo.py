"""The model zoo: manifest vs the shared files, pull/import/verify/path, HTTP download and resume.

Nothing here touches the internet: downloads come from a server on 127.0.0.1 in a thread, and
every test writes into its own EDGEKIT_MODEL_DIR (and its own XDG cache) under tmp_path.
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from edgekit.models import zoo
from edgekit.commands import models as models_cmd
from edgekit.errors import ChecksumError, DownloadError, EdgekitError, ModelNotFoundError
from edgekit.models.tflite import read_graph_file
from edgekit.models.labels import embedded_labels

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ("yamnet", "yamnet_spectra_in", "yamnet_spectra_in_edgetpu", "mobilenet_v1_0.25_128_quant",
            "mobilenet_v1_0.25_128_quant_edgetpu", "mobilenet_v1_0.5_160_quant",
            "mobilenet_v1_0.5_160_quant_edgetpu", "mobilenet_v2_1.0_224_quant", "yamnet_class_map")


def cli(*argv: str) -> int:
    """`edgekit models ...` in-process, through the real CLI once it registers the command."""
    from edgekit import cli as ekcli

    if "models" in ekcli.COMMANDS:
        return ekcli.main(["models", *argv])
    parser = argparse.ArgumentParser(prog="edgekit models")
    models_cmd.add_arguments(parser)
    args = parser.parse_args(list(argv))
    try:
        return models_cmd.run(args)
    except EdgekitError as exc:
        print(f"edgekit: error: {exc}", file=sys.stderr)
        return 1


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "models"
    monkeypatch.setenv("EDGEKIT_MODEL_DIR", str(d))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("EDGEKIT_MANIFEST", raising=False)
    # A proxy from the environment must not swallow requests to the local test server.
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return d


def shared_entries(models_dir: Path) -> list[zoo.Entry]:
    return [e for e in zoo.manifest().values() if (models_dir / e.file).is_file()]


def sums(models_dir: Path) -> dict[str, str]:
    out = {}
    for line in (models_dir.parent / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        out[name.strip().removeprefix("*")] = digest
    return out


# --- the manifest ----------------------------------------------------------------------------


def test_manifest_has_the_required_entries():
    m = zoo.manifest()
    for name in REQUIRED:
        assert name in m, name
    assert m["yamnet"].kind == "waveform" and m["yamnet_spectra_in"].kind == "log-mel"
    assert m["yamnet_class_map"].kind == "labels" and m["yamnet_spectra_in"].labels == "yamnet_class_map"
    assert m["yamnet_spectra_in"].edgetpu == "yamnet_spectra_in_edgetpu"
    for e in m.values():
        assert all(u.startswith("https://") for u in e.urls)
        if e.verified:
            assert e.sha256 and e.size and e.license
        if "raw.githubusercontent.com" in e.urls[0]:
            # pinned at a commit, so the bytes behind the URL cannot change
            assert re.search(r"/[0-9a-f]{40}/", e.urls[0]), e.urls[0]


def test_manifest_checksums_equal_shared_sha256sums(models_dir):
    pinned = sums(models_dir)
    entries = shared_entries(models_dir)
    assert {e.name for e in entries} >= set(REQUIRED)
    for e in entries:
        assert e.sha256 == pinned[f"models/{e.file}"], e.name
        assert e.size == (models_dir / e.file).stat().st_size, e.name


def test_manifest_inputs_and_labels_match_the_graphs(models_dir):
    from edgekit.models.model import input_kind

    for e in shared_entries(models_dir):
        if not e.is_model:
            continue
        graph, data = read_graph_file(models_dir / e.file)
        t = graph.input_tensors()[0]
        assert (tuple(t.shape), t.dtype) == (e.input_shape, e.input_dtype), e.name
        assert input_kind(graph) == e.kind, e.name
        assert (embedded_labels(graph, data) is not None) == (e.labels == "embedded"), e.name
        assert graph.is_edgetpu == bool(e.compiled_from), e.name


def test_unknown_name_suggests_close_ones(cache, capsys):
    with pytest.raises(ModelNotFoundError, match="did you mean yamnet"):
        zoo.get("yamnett")
    assert cli("path", "yamnett") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean" in err


# --- pull --from, verify, path ---------------------------------------------------------------


def test_pull_from_every_shared_file_then_verify_and_list(cache, models_dir, capsys):
    entries = shared_entries(models_dir)
    for e in entries:
        assert cli("pull", e.name, "--from", str(models_dir / e.file), "-q") == 0
        assert (cache / e.file).is_file()
    out = capsys.readouterr().out
    assert "imported" in out
    assert sorted(p.name for p in cache.iterdir()) == sorted(e.file for e in entries)  # no leftovers

    assert cli("pull", "yamnet", "-q") == 0  # cached and good: no network needed
    assert "already cached" in capsys.readouterr().out

    assert cli("verify") == 0
    out = capsys.readouterr().out
    for e in entries:
        assert re.search(rf"^{re.escape(e.name)}\s+ok\s+{re.escape(str(cache / e.file))}$", out, re.M)

    assert cli("list") == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("yamnet_spectra_in "))
    assert "log-mel" in row and "1x96x64 float32" in row and " yes " in row
    assert "yamnet_spectra_in_edgetpu" in row
    assert f"pull writes to {cache}" in out


def test_checksum_mismatch_is_refused_and_nothing_is_installed(cache, models_dir, tmp_path, capsys):
    bad = tmp_path / "bad.tflite"
    data = bytearray((models_dir / "yamnet_spectra_in.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        zoo.pull("yamnet_spectra_in", bad, progress=False)
    assert cli("pull", "yamnet_spectra_in", "--from", str(bad), "-q") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checksum mismatch" in err and "nothing was installed" in err
    assert zoo.manifest()["yamnet_spectra_in"].sha256 in err
    assert [p for p in cache.iterdir() if not p.name.endswith(".part")] == []


def test_import_of_a_missing_file(cache, tmp_path, capsys):
    assert cli("pull", "yamnet", "--from", str(tmp_path / "nope.tflite")) == 1
    assert "no such file to import" in capsys.readouterr().err


def test_verify_detects_a_corrupted_cached_file(cache, models_dir, capsys):
    zoo.pull("mobilenet_v1_0.25_128_quant", models_dir / "mobilenet_v1_0.25_128_quant.tflite")
    target = cache / "mobilenet_v1_0.25_128_quant.tflite"
    with open(target, "r+b") as f:
        f.seek(1000)
        f.write(b"\0\0\0\0")
    checks = {c.name: c for c in zoo.verify()}
    assert checks["mobilenet_v1_0.25_128_quant"].status == "mismatch"
    assert checks["yamnet"].status == "missing"
    assert cli("verify") == 1
    captured = capsys.readouterr()
    assert re.search(r"^mobilenet_v1_0\.25_128_quant\s+MISMATCH", captured.out, re.M)
    assert "do not match" in captured.err
    # pull replaces the corrupt copy (atomically) with a good one
    assert cli("pull", "mobilenet_v1_0.25_128_quant", "--from",
               str(models_dir / "mobilenet_v1_0.25_128_quant.tflite")) == 0
    assert cli("verify", "mobilenet_v1_0.25_128_quant") == 0


def test_path_prints_the_cached_file_or_says_how_to_get_it(cache, models_dir, capsys):
    assert cli("path", "yamnet") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not cached" in err and "edgekit models pull yamnet" in err
    zoo.pull("yamnet", models_dir / "yamnet.tflite")
    assert cli("path", "yamnet") == 0
    assert capsys.readouterr().out.strip() == str(cache / "yamnet.tflite")


def test_load_model_finds_what_pull_put_there(cache, models_dir, capsys):
    from edgekit.models.model import load_model
    from edgekit.models.paths import resolve_model

    for name, file in (("yamnet_spectra_in", "yamnet_spectra_in.tflite"),
                       ("yamnet_class_map", "yamnet_class_map.csv")):
        assert cli("pull", name, "--from", str(models_dir / file), "-q") == 0
    assert resolve_model("yamnet_spectra_in") == cache / "yamnet_spectra_in.tflite"
    model = load_model("yamnet_spectra_in")
    assert model.path == cache / "yamnet_spectra_in.tflite"
    assert len(model.labels) == 521 and model.labels[0] == "Speech"  # the class map pulled beside it
    patch = np.fromfile(models_dir / "yamnet_test_spectra.bin", "<f4").reshape(96, 64)
    assert model.labels[int(np.argmax(model.run(patch)))] == "Speech"


def test_cache_dir_follows_the_service_and_the_user(tmp_path, monkeypatch):
    from edgekit.models.paths import model_dirs

    monkeypatch.delenv("EDGEKIT_MODEL_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    assert zoo.cache_dir() == tmp_path / "xdg" / "edgekit" / "models"
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))  # as systemd sets it
    assert zoo.cache_dir() == tmp_path / "state" / "models"
    assert zoo.cache_dir() in model_dirs()
    monkeypatch.setenv("EDGEKIT_MODEL_DIR", str(tmp_path / "mine"))
    assert zoo.cache_dir() == tmp_path / "mine"
    assert zoo.cache_dir(tmp_path / "cli") == tmp_path / "cli"
    assert ROOT not in zoo.cache_dir().parents


# --- downloads from a local HTTP server ------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        if rng and srv.ranges:
            start = int(re.match(r"bytes=(\d+)-", rng).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if srv.cut_next:  # promise the whole file, send 40 % of it, hang up
            srv.cut_next = False
            self.wfile.write(chunk[: len(chunk) * 2 // 5])
            self.close_connection = True
            return
        self.wfile.write(chunk)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(models_dir):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests, srv.ranges, srv.cut_next = {}, [], True, False
    srv.files["/yamnet_spectra_in.tflite"] = (models_dir / "yamnet_spectra_in.tflite").read_bytes()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_download_shows_progress_and_installs(cache, server, capsys):
    url = f"{server.url}/yamnet_spectra_in.tflite"
    assert cli("pull", "yamnet_spectra_in", "--from", url) == 0
    captured = capsys.readouterr()
    assert "yamnet_spectra_in: downloaded" in captured.out
    assert "100%" in captured.err and "yamnet_spectra_in" in captured.err  # the tqdm bar
    assert server.requests == [("/yamnet_spectra_in.tflite", None)]
    final = cache / "yamnet_spectra_in.tflite"
    assert zoo.sha256_file(final) == zoo.get("yamnet_spectra_in").sha256
    assert not zoo.part_path(final).exists()


def test_download_resumes_a_part_file_with_a_range_request(cache, server):
    body = server.files["/yamnet_spectra_in.tflite"]
    cache.mkdir(parents=True)
    half = len(body) // 2
    zoo.part_path(cache / "yamnet_spectra_in.tflite").write_bytes(body[:half])
    got = zoo.pull("yamnet_spectra_in", f"{server.url}/yamnet_spectra_in.tflite", progress=False)
    assert got.action == "downloaded" and got.sha256 == zoo.get("yamnet_spectra_in").sha256
    assert server.requests == [("/yamnet_spectra_in.tflite", f"bytes={half}-")]
    assert sorted(p.name for p in cache.iterdir()) == ["yamnet_spectra_in.tflite"]


def test_a_broken_download_keeps_its_part_and_the_next_pull_resumes(cache, server, capsys):
    server.cut_next = True
    url = f"{server.url}/yamnet_spectra_in.tflite"
    assert cli("pull", "yamnet_spectra_in", "--from", url, "-q") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run the same command again to resume" in err
    part = zoo.part_path(cache / "yamnet_spectra_in.tflite")
    have = part.stat().st_size
    assert 0 < have < len(server.files["/yamnet_spectra_in.tflite"])
    assert not (cache / "yamnet_spectra_in.tflite").exists()
    assert cli("pull", "yamnet_spectra_in", "--from", url, "-q") == 0
    assert server.requests[-1] == ("/yamnet_spectra_in.tflite", f"bytes={have}-")
    assert cli("verify", "yamnet_spectra_in") == 0


def test_a_server_without_range_support_restarts_cleanly(cache, server):
    server.ranges = False
    body = server.files["/yamnet_spectra_in.tflite"]
    cache.mkdir(parents=True)
    zoo.part_path(cache / "yamnet_spectra_in.tflite").write_bytes(body[:1000])
    got = zoo.pull("yamnet_spectra_in", f"{server.url}/yamnet_spectra_in.tflite", progress=False)
    assert got.sha256 == zoo.get("yamnet_spectra_in").sha256


def test_a_stale_part_that_is_not_a_prefix_is_fetched_again_whole(cache, server):
    cache.mkdir(parents=True)
    zoo.part_path(cache / "yamnet_spectra_in.tflite").write_bytes(b"x" * 1000)
    got = zoo.pull("yamnet_spectra_in", f"{server.url}/yamnet_spectra_in.tflite", progress=False)
    assert got.sha256 == zoo.get("yamnet_spectra_in").sha256
    assert [r[1] for r in server.requests] == ["bytes=1000-", None]
    assert sorted(p.name for p in cache.iterdir()) == ["yamnet_spectra_in.tflite"]


def test_wrong_content_over_http_is_refused(cache, server, capsys):
    server.files["/page"] = b"<!DOCTYPE html><html><body>Sign in</body></html>\n"
    assert cli("pull", "yamnet_spectra_in", "--from", f"{server.url}/page", "-q") == 1
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and "HTML page" in err
    assert list(cache.iterdir()) == []
    assert cli("pull", "yamnet_spectra_in", "--from", f"{server.url}/missing", "-q") == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_no_network_names_the_url_and_suggests_from(cache, capsys):
    url = f"http://127.0.0.1:{closed_port()}/yamnet.tflite"
    with pytest.raises(DownloadError):
        zoo.pull("yamnet", url, progress=False)
    assert cli("pull", "yamnet", "--from", url) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and url in err and "--from FILE" in err and "Traceback" not in err


def test_upstream_urls_are_tried_in_order(cache, server, tmp_path, monkeypatch, capsys):
    dead = f"http://127.0.0.1:{closed_port()}/yamnet_spectra_in.tflite"
    entry = zoo.get("yamnet_spectra_in")
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(
        "[models.yamnet_spectra_in]\n"
        f'file = "{entry.file}"\nkind = "log-mel"\nsha256 = "{entry.sha256}"\nsize = {entry.size}\n'
        f'urls = ["{dead}", "{server.url}/yamnet_spectra_in.tflite"]\n'
        "[models.unpinned]\n"
        f'file = "unpinned.tflite"\nkind = "log-mel"\nverified = false\n'
        f'urls = ["{server.url}/yamnet_spectra_in.tflite"]\n'
    )
    monkeypatch.setenv("EDGEKIT_MANIFEST", str(manifest))
    assert cli("pull", "yamnet_spectra_in", "-q") == 0
    assert (cache / entry.file).is_file()
    assert cli("pull", "unpinned", "-q") == 0
    out = capsys.readouterr().out
    assert f"sha256 {entry.sha256}" in out and "not pinned" in out
    assert {c.name: c.status for c in zoo.verify()} == {"yamnet_spectra_in": "ok", "unpinned": "unpinned"}
    manifest.write_text(manifest.read_text().replace(f'"{server.url}/yamnet_spectra_in.tflite"', f'"{dead}"'))
    (cache / entry.file).unlink()
    with pytest.raises(DownloadError, match="every upstream URL failed"):
        zoo.pull("yamnet_spectra_in", progress=False)
