"""Custom sounds: head fitting, the sound file, the store, examples, learning on real audio, the CLI."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import DATA, need
from edgekit.cli import main as cli
from edgekit.errors import ExamplesError, SoundError, SoundModelMismatchError, SoundNotFoundError
from edgekit.sounds.bank import load_bank
from edgekit.sounds.examples import activity, check_examples, positive_windows
from edgekit.sounds.logreg import fit_logistic
from edgekit.detect.heads import EmbeddingSpec, Sound, save_sound
from edgekit.detect.sound_file import load_sound_file
from edgekit.detect.sound_store import find_sound, list_sounds, load_sound, remove_sound, sound_dirs, sound_path

RATE = 16000


# --- the head ------------------------------------------------------------------------------


def _objective(head, x, y, w, c, scale):
    z = head.logits(x)
    return float(np.sum(w * np.logaddexp(0, -(2 * y - 1) * z)) + 0.5 / c * np.sum((head.weights * scale) ** 2))


def test_newton_fit_is_at_least_as_good_as_scikit_learn():
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(1)
    x = np.abs(rng.standard_normal((600, 40)))
    y = (x[:, :3].sum(1) + rng.standard_normal(600) > 3).astype(float)
    w = rng.uniform(0.5, 2, 600)
    ours = fit_logistic(x, y, c=0.3, sample_weight=w, standardize=False)
    scale = np.sqrt(np.mean(x.std(0) ** 2))  # the one scale our fit puts all features on
    ref = sklearn.LogisticRegression(C=0.3, tol=1e-10, max_iter=10000).fit(x / scale, y, sample_weight=w)
    from edgekit.sounds.logreg import LinearHead

    theirs = LinearHead(ref.coef_[0] / scale, float(ref.intercept_[0]))
    # Same objective (scikit-learn's, on the same scaled features): ours is no worse, and the
    # two optima agree.
    assert _objective(ours, x, y, w, 0.3, scale) <= _objective(theirs, x, y, w, 0.3, scale) + 1e-6
    np.testing.assert_allclose(ours.probabilities(x), theirs.probabilities(x), atol=2e-3)


def test_warm_start_reaches_the_same_optimum():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((400, 30))
    y = (x[:, 0] > 0).astype(float)
    cold = fit_logistic(x, y, c=0.5)
    warm = fit_logistic(x, y, c=0.5, init=fit_logistic(x[:200], y[:200], c=0.5))
    np.testing.assert_allclose(cold.probabilities(x), warm.probabilities(x), atol=1e-6)


# --- the sound file ------------------------------------------------------------------------

SPEC = EmbeddingSpec(model="yamnet.tflite", model_sha256="ab" * 32, hop_seconds=0.48, frontend="in-graph")


def make_sound(name="doorbell", **kw) -> Sound:
    rng = np.random.default_rng(0)
    return Sound(name=name, weights=rng.standard_normal(1024).astype(np.float32) * 0.01, bias=-1.0, threshold=0.5,
                 spec=kw.pop("spec", SPEC), summary={"examples": 3, "notes": []}, **kw)


def test_sound_file_round_trip(tmp_path):
    s = make_sound()
    loaded = load_sound_file(save_sound(s, tmp_path / "doorbell.sound.npz"))
    assert loaded == s and loaded.summary == s.summary
    np.testing.assert_array_equal(loaded.weights, s.weights)
    emb = np.random.default_rng(3).uniform(0, 2, (5, 1024)).astype(np.float32)
    np.testing.assert_array_equal(loaded.score_arrays(emb), s.score_arrays(emb))


def test_edited_or_corrupt_file_is_refused(tmp_path):
    path = save_sound(make_sound(), tmp_path / "d.sound.npz")
    with np.load(path) as z:
        weights, meta = z["weights"], json.loads(str(z["meta"]))
    meta["threshold"] = 0.1  # a hand edit
    np.savez(tmp_path / "edited.sound.npz", weights=weights, meta=np.array(json.dumps(meta)))
    with pytest.raises(SoundError, match="corrupted or was edited"):
        load_sound_file(tmp_path / "edited.sound.npz")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / "flipped.sound.npz").write_bytes(bytes(raw))
    with pytest.raises(SoundError):
        load_sound_file(tmp_path / "flipped.sound.npz")
    (tmp_path / "text.sound.npz").write_text("hello")
    with pytest.raises(SoundError, match="not a readable sound file"):
        load_sound_file(tmp_path / "text.sound.npz")


def test_future_version_is_refused_with_advice(tmp_path):
    import edgekit.detect.heads as sound_mod

    path = save_sound(make_sound(), tmp_path / "d.sound.npz")
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        weights = z["weights"]
    meta["version"] = 99
    meta["digest"] = sound_mod._digest(weights, meta)
    np.savez(path, weights=weights, meta=np.array(json.dumps(meta)))
    with pytest.raises(SoundError, match="version 99"):
        load_sound_file(path)


@dataclass
class FakeModel:
    path: Path
    sha256: str


def test_model_mismatch_is_a_clear_error():
    s = make_sound()
    s.check_model(FakeModel(Path("yamnet.tflite"), "ab" * 32))
    with pytest.raises(SoundModelMismatchError, match="learned on yamnet.tflite.*learn it again"):
        s.check_model(FakeModel(Path("other.tflite"), "cd" * 32))


@dataclass(frozen=True)
class Window:  # the fields of edgekit.listen.WindowResult a head reads
    scores: np.ndarray | None
    embedding: np.ndarray | None


def test_score_of_a_window_result():
    s = make_sound()
    emb = np.random.default_rng(4).uniform(0, 2, 1024).astype(np.float32)
    assert s.score(Window(np.zeros(521, np.float32), emb)) == pytest.approx(float(s.score_arrays(emb)[0]))
    assert s.score(Window(None, None)) == 0.0  # a window the volume gate skipped
    assert 0 < s.release < s.threshold


def test_stock_label_feature_needs_scores():
    spec = replace(SPEC, stock_labels=("Doorbell",), stock_indices=(349,))
    s = Sound("bell", np.zeros(1025, np.float32), 0.0, 0.5, spec)
    emb = np.ones((1, 1024), np.float32)
    with pytest.raises(SoundError, match="scores"):
        s.score_arrays(emb)
    assert s.score_arrays(emb, np.full((1, 521), 0.3, np.float32)).shape == (1,)


@pytest.mark.parametrize("name", ["", "Doorbell", "../x", "a b", "x" * 65])
def test_bad_names(name):
    from edgekit.detect.heads import check_name

    with pytest.raises(SoundError, match="bad sound name"):
        check_name(name)


# --- the store -----------------------------------------------------------------------------


def test_store_order_and_lookup(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("EDGEKIT_SOUNDS_DIR", f"{a}:{b}")
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    dirs = sound_dirs()
    assert dirs[:3] == [a, b, tmp_path / "state" / "sounds"] and dirs[-1] == Path("/var/lib/edgekit/sounds")
    save_sound(make_sound("washer"), sound_path("washer", b))
    save_sound(make_sound("washer"), sound_path("washer"))  # the first directory wins
    assert find_sound("washer") == a / "washer.sound.npz"
    assert [n for n, _ in list_sounds()] == ["washer"]
    assert load_sound("washer").name == "washer"
    remove_sound("washer")
    assert find_sound("washer") == b / "washer.sound.npz"
    with pytest.raises(SoundNotFoundError, match="edgekit sounds learn nothing"):
        load_sound("nothing")


def test_service_state_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEKIT_SOUNDS_DIR", raising=False)
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    assert sound_path("bell") == tmp_path / "sounds" / "bell.sound.npz"


# --- examples ------------------------------------------------------------------------------


def burst_clip(seconds=4.0, at=1.5, length=0.4, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(seconds * RATE)) * 30
    t = np.arange(int(length * RATE)) / RATE
    lo = int(at * RATE)
    x[lo: lo + len(t)] += 8000 * np.sin(2 * np.pi * 1000 * t)
    return np.clip(x, -32768, 32767).astype(np.int16)


def test_activity_finds_the_burst_and_positive_windows_hold_it():
    pcm = burst_clip()
    active = activity(pcm)
    on = np.flatnonzero(active) / RATE
    assert 1.4 <= on.min() <= 1.5 and 1.9 <= on.max() <= 2.0
    starts = np.arange(0, 3.1, 0.1)
    keep = positive_windows(active, starts)
    assert keep.any()
    total = active.sum()
    for s, k in zip(starts, keep):
        inside = active[int(round(s * RATE)): int(round(s * RATE)) + 15600].sum()
        assert k == (inside >= 0.5 * total)  # kept exactly when it holds at least half of the burst


def test_steady_sound_is_active_throughout():
    hum = (3000 * np.sin(2 * np.pi * 100 * np.arange(3 * RATE) / RATE)).astype(np.int16)
    assert activity(hum).all()


def test_bad_examples_say_what_to_record():
    silent = np.zeros(3 * RATE, np.int16)
    short = burst_clip(seconds=0.6, at=0.1, length=0.2)
    with pytest.raises(ExamplesError) as err:
        check_examples([("quiet.wav", silent), ("short.wav", short), ("good.wav", burst_clip())])
    text = str(err.value)
    assert "quiet.wav: silent" in text and "microphone" in text
    assert "short.wav" in text and "shorter than one 0.975 s window" in text and "good.wav" not in text
    with pytest.raises(ExamplesError, match="no example"):
        check_examples([])


# --- the shipped negatives -----------------------------------------------------------------


def test_bank_is_small_openly_licensed_and_attributed():
    bank = load_bank()
    assert bank is not None and bank.embeddings.shape[1] == 1024 and 100 <= len(bank) <= 2000
    data_dir = Path(__file__).resolve().parents[1] / "edgekit" / "sounds" / "data"
    assert (data_dir / "negatives.npz").stat().st_size < 500_000
    attribution = (data_dir / "ATTRIBUTION.md").read_text()
    for f in bank.meta["files"]:
        name = Path(f).name
        assert not name.startswith(("esc50", "urbansound")), name  # non-commercial sources never ship
        assert name in attribution
    manifest = DATA / "events" / "MANIFEST.csv"
    if manifest.exists():
        licences = {r["path"]: r["licence"] for r in csv.DictReader(open(manifest, newline=""))}
        for f in bank.meta["files"]:
            assert licences[f].startswith("CC BY 4.0"), (f, licences[f])
    # CC0 samples (scripts/sounds_bank_cc0.csv): each listed in ATTRIBUTION.md with its licence and original.
    cc0 = {r["file"]: r for r in bank_script().cc0_files()}
    lines = {line.split(" ", 2)[1]: line for line in attribution.splitlines() if line.startswith("- ")}
    for f in bank.meta.get("cc0_files", []):
        assert f in cc0 and f in lines, f
        assert "CC0" in lines[f] and cc0[f]["source"] in lines[f], lines[f]
    assert set(bank.sources) <= set(bank.meta["files"]) | set(bank.meta.get("cc0_files", []))


def bank_script():
    """scripts/make_sounds_bank.py as a module (it is a script, not part of the package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "make_sounds_bank.py"
    spec = importlib.util.spec_from_file_location("make_sounds_bank", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cc0_manifest_lists_only_public_domain_samples_with_their_originals():
    rows = bank_script().cc0_files()
    names = [r["file"] for r in rows]
    assert len(names) == len(set(names)) and len(rows) >= 100
    for r in rows:
        assert r["licence"] == "CC0 1.0" and r["file"].endswith(".flac") and r["kind"], r
        # freesound.org originals, or (arovane_*) the donation stated in Sonic Pi's samples README
        assert r["source"].startswith("https://freesound.org/people/") or (
            r["file"].startswith("arovane_") and "sonic-pi" in r["source"]), r


def test_cc0_windows_spread_over_files_bounded_and_deterministic():
    spread = bank_script().spread
    counts = [1, 30, 2, 5, 1, 9, 3]
    picks = spread(counts, 3, 12)
    assert picks == spread(counts, 3, 12) and len(picks) == 12
    assert {f for f, _ in picks} == set(range(len(counts)))  # every file before any file's second window
    for f, n in enumerate(counts):
        mine = [i for g, i in picks if g == f]
        assert len(mine) == len(set(mine)) <= 3 and all(0 <= i < n for i in mine)
    assert len(spread(counts, 3, 1000)) == sum(min(n, 3) for n in counts)  # the per-file cap
    assert len(spread(counts, 3, 4)) == 4


def test_bank_script_refuses_a_cc0_folder_without_the_listed_files(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        bank_script().main(["--cc0", str(tmp_path), "--out", str(tmp_path / "negatives.npz")])
    assert "files are missing" in str(err.value) and "etc/samples" in str(err.value)
    assert not (tmp_path / "negatives.npz").exists()


def test_attribution_of_a_bank_with_cc0_samples_names_each_original(tmp_path):
    script = bank_script()
    cc0 = script.cc0_files()[:3]
    meta = {"model": "yamnet.tflite", "hop_seconds": 0.48, "files": ["background/noise/a.flac"]}
    script.write_attribution(tmp_path / "ATTRIBUTION.md", 9, meta, {"background/noise/a.flac": "CC BY 4.0"}, cc0)
    text = (tmp_path / "ATTRIBUTION.md").read_text()
    assert "a.flac (CC BY 4.0)" in text and "Sonic Pi" in text and "CC0 1.0" in text
    for r in cc0:
        assert f"- {r['file']} (CC0 1.0; {r['kind']}): {r['source']}" in text


def test_a_candidate_bank_reads_like_the_shipped_one():
    from edgekit.sounds.bank import read_bank

    shipped = load_bank()
    path = Path(__file__).resolve().parents[1] / "edgekit" / "sounds" / "data" / "negatives.npz"
    again = read_bank(path)
    assert again.embeddings.dtype == np.float32 and np.array_equal(again.embeddings, shipped.embeddings)
    assert again.sources == shipped.sources


# --- learning on real audio ----------------------------------------------------------------


def events_file(*parts) -> Path:
    return need(DATA.joinpath("events", *parts))


@pytest.fixture(scope="module")
def embedder():
    from edgekit.sounds.embed import Embedder

    return Embedder(need(DATA / "models" / "yamnet.tflite"))


def smoke_alarm_clips():
    """Three recordings of smoke alarms (BigSoundBank, royalty free): two to learn, one to test."""
    from edgekit.audio.files import read_audio

    folder = events_file("target", "smoke_alarm")
    return [read_audio(p) for p in sorted(folder.glob("*.flac"))]


def background_clips(n=6):
    from edgekit.audio.files import read_audio

    folder = events_file("background", "speech")
    return [(p.name, read_audio(p)) for p in sorted(folder.glob("resemblyzer*"))[1::2][:n]]


def test_learn_a_sound_and_hear_it_in_another_recording(embedder):
    from edgekit.sounds.train import TrainOptions, learn

    alarms = smoke_alarm_clips()
    examples = [(f"alarm{i}", a[: 4 * RATE]) for i, a in enumerate(alarms[:2])]
    # 75 s of room: enough for a budget of 60 false alarms/h, the lowest it can show (1/target hours).
    sound = learn("smoke", examples, background_clips(), embedder, TrainOptions(augment=1, target_fa_per_hour=60))
    assert sound.summary["examples_detected"] == 2
    held_out = embedder.embed(alarms[2][: 8 * RATE], sound.spec.hop_seconds)
    assert sound.score_arrays(held_out.embeddings).max() >= sound.threshold
    from edgekit.audio.files import read_audio

    for other in ("speech.wav", "dog.wav"):
        e = embedder.embed(read_audio(need(DATA / "audio" / other)), sound.spec.hop_seconds)
        assert sound.score_arrays(e.embeddings).max() < sound.threshold, other


def test_examples_that_are_just_the_room_are_refused(embedder):
    from edgekit.sounds.train import TrainOptions, learn

    room = background_clips(6)
    examples = [(f"room{i}", pcm) for i, (_, pcm) in enumerate(room[:2])]
    with pytest.raises(ExamplesError, match="indistinguishable from the background"):
        learn("nothing", examples, room, embedder, TrainOptions(augment=0, target_fa_per_hour=60))


# --- the command line ----------------------------------------------------------------------


def test_cli_learn_list_show_test_remove(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEKIT_SOUNDS_DIR", str(tmp_path / "sounds"))
    monkeypatch.setenv("EDGEKIT_MODEL_DIR", str(need(DATA / "models")))
    alarms = smoke_alarm_clips()
    ex_dir = tmp_path / "examples"
    ex_dir.mkdir()
    for i, a in enumerate(alarms[:2]):
        sf.write(ex_dir / f"alarm{i}.wav", a[: 4 * RATE], RATE)
    bg_dir = tmp_path / "room"
    bg_dir.mkdir()
    for name, pcm in background_clips(4):
        sf.write(bg_dir / f"{name}.wav", pcm, RATE)
    sf.write(tmp_path / "test_alarm.wav", alarms[2][: 6 * RATE], RATE)

    assert cli(["sounds", "learn", "smoke", "--examples", str(ex_dir), "--background", str(bg_dir),
                "--fa-per-hour", "100", "--context", "nonsense"]) == 1
    assert "--context 'nonsense': give seconds from 0 to 6, or auto" in capsys.readouterr().err
    assert cli(["sounds", "learn", "smoke", "--examples", str(ex_dir), "--background", str(bg_dir),
                "--fa-per-hour", "100", "--json"]) == 0
    learned = json.loads(capsys.readouterr().out)
    assert Path(learned["path"]).is_file() and learned["summary"]["examples"] == 2

    assert cli(["sounds", "list", "--json"]) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)["sounds"]] == ["smoke"]
    assert cli(["sounds", "show", "smoke"]) == 0
    assert "yamnet_spectra_in.tflite" in capsys.readouterr().out  # the default model, as in the example config
    assert cli(["sounds", "test", "smoke", str(tmp_path / "test_alarm.wav"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["detected"] is True
    assert cli(["sounds", "remove", "smoke"]) == 0
    capsys.readouterr()
    assert cli(["sounds", "show", "smoke"]) == 1
    assert "no custom sound 'smoke'" in capsys.readouterr().err


def test_cli_bad_examples_exit_with_a_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEKIT_SOUNDS_DIR", str(tmp_path / "sounds"))
    monkeypatch.setenv("EDGEKIT_MODEL_DIR", str(need(DATA / "models")))
    sf.write(tmp_path / "silence.wav", np.zeros(3 * RATE, np.int16), RATE)
    assert cli(["sounds", "learn", "bell", "--examples", str(tmp_path / "silence.wav")]) == 1
    err = capsys.readouterr().err
    assert "silent" in err and "Traceback" not in err
    assert cli(["sounds", "learn", "bell", "--examples", str(tmp_path / "missing")]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_cli_sounds_for_the_service(tmp_path, monkeypatch, capsys):
    """--service learns into, lists, shows, tests and removes from the service's folder alone,
    files 0644 in a 0755 folder (the service's dynamic user reads them; only root changes them)."""
    import stat

    import edgekit.detect.sound_store as store

    service = tmp_path / "var-lib-edgekit" / "sounds"
    monkeypatch.setattr(store, "SERVICE_SOUNDS_DIR", service)
    monkeypatch.setenv("EDGEKIT_SOUNDS_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("EDGEKIT_MODEL_DIR", str(need(DATA / "models")))
    monkeypatch.setattr(os, "umask", os.umask)  # restored below
    old = os.umask(0o077)  # sudo's root may have any umask; the modes must not depend on it
    try:
        alarms = smoke_alarm_clips()
        ex_dir = tmp_path / "examples"
        ex_dir.mkdir()
        for i, a in enumerate(alarms[:2]):
            sf.write(ex_dir / f"alarm{i}.wav", a[: 4 * RATE], RATE)
        assert cli(["sounds", "learn", "beep", "--service", "--examples", str(ex_dir)]) == 0
    finally:
        os.umask(old)
    out = capsys.readouterr().out
    assert f"saved to {service / 'beep.sound.npz'}" in out and 'sounds = ["beep"]' in out
    assert "sudo systemctl reload edgekit" in out
    assert stat.S_IMODE((service / "beep.sound.npz").stat().st_mode) == 0o644
    assert stat.S_IMODE(service.stat().st_mode) == 0o755
    assert not (tmp_path / "mine").exists()  # not the user's folder
    assert cli(["sounds", "list", "--service", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [x["name"] for x in listed["sounds"]] == ["beep"] and listed["dirs"] == [str(service)]
    assert cli(["sounds", "show", "beep", "--service"]) == 0
    assert cli(["sounds", "test", "beep", "--service", str(ex_dir / "alarm0.wav")]) == 0
    assert cli(["sounds", "remove", "beep", "--service"]) == 0
    capsys.readouterr()
    assert cli(["sounds", "show", "beep", "--service"]) == 1
    assert f"looked in: {service}." in capsys.readouterr().err


def test_edgetpu_model_learns_on_its_cpu_twin_and_says_so():
    from edgekit.sounds.embed import Embedder
    from edgekit.detect.heads import file_sha256

    need(DATA / "models" / "yamnet_spectra_in_edgetpu.tflite")
    e = Embedder(DATA / "models" / "yamnet_spectra_in_edgetpu.tflite")
    assert e.path.name == "yamnet_spectra_in.tflite" and "CPU twin" in e.note
    assert e.sha256 == file_sha256(DATA / "models" / "yamnet_spectra_in.tflite")
    assert e.frontend == "fixed" and e.dims == 1024


def test_check_model_against_a_loaded_model():
    from edgekit.models.model import load_model
    from edgekit.detect.heads import file_sha256

    model = load_model(need(DATA / "models" / "yamnet.tflite"), embedding=True)
    sound = make_sound(spec=replace(SPEC, model_sha256=file_sha256(model.path)))
    sound.check_model(model)
    other = load_model(need(DATA / "models" / "yamnet_spectra_in.tflite"))
    with pytest.raises(SoundModelMismatchError, match="yamnet_spectra_in.tflite"):
        sound.check_model(other)


def test_context_is_a_new_field_that_old_files_read_as_one_window(tmp_path):
    import json as _json

    from edgekit.detect.sound_file import load_sound_file

    plain = make_sound()
    p = save_sound(plain, tmp_path / f"{plain.name}.sound.npz")
    with np.load(p, allow_pickle=False) as z:
        assert "context_seconds" not in _json.loads(str(z["meta"]))["spec"]  # written as before
    assert load_sound_file(p).spec.context_seconds == 0.0
    wide = make_sound(name="wide")
    wide = Sound(wide.name, np.zeros(2048, np.float32), 0.0, 0.5, replace(wide.spec, context_seconds=3.0))
    assert load_sound_file(save_sound(wide, tmp_path / "wide.sound.npz")).spec.context_seconds == 3.0
    with pytest.raises(SoundError, match="needs the windows before this one"):
        wide.score(type("W", (), {"embedding": np.zeros(1024, np.float32), "scores": None})())


def test_cross_validation_picks_context_for_a_pattern_no_single_window_shows():
    """A sound that is a rhythm of two room-like pieces (A, B, A, B every second): any one window
    looks like the room, which has long runs of A and of B. Cross-validation on the examples and
    the room alone must choose a context, and that head must rank a new example above the room's
    windows (all but the few where the room itself switches from A to B)."""
    from edgekit.sounds.embed import Embedded
    from edgekit.sounds.examples import Example
    from edgekit.sounds.train import TrainOptions, choose_context, fit_sound, prepare

    dims, hop_rng = 16, np.random.default_rng(5)
    a, b = np.eye(dims)[0] * 3, np.eye(dims)[1] * 3

    def embed(pcm, hop):
        starts = np.arange(0, max(len(pcm) / RATE - 0.975, 0) + 1e-9, hop)
        rows = []
        for t in starts:
            m = float(np.mean(pcm[int(t * RATE): int((t + 0.975) * RATE)]))
            rows.append((a if m > 0 else b) + hop_rng.normal(0, 0.3, dims))
        e = np.array(rows, np.float32)
        return Embedded(starts, np.zeros((len(e), 521), np.float32), e)

    def rhythm(seconds, phase=0.0):
        t = np.arange(int(seconds * RATE)) / RATE
        return np.where(((t + phase) // 1.0) % 2 == 0, 1000, -1000).astype(np.int16)

    def runs(seconds, first):
        t = np.arange(int(seconds * RATE)) / RATE
        return np.where((t // 20) % 2 == first, 1000, -1000).astype(np.int16)

    room = [(f"room{i}", runs(90, i % 2)) for i in range(3)]
    examples = [Example(f"ex{i}", rhythm(8, 0.3 * i), np.ones(8 * RATE, bool)) for i in range(4)]
    options = TrainOptions(augment=0, contexts=(0.0, 2.0), target_fa_per_hour=60.0, hop=0.25, background_hop=0.25)
    ts = prepare(examples, room, embed, options)
    context, table, _ = choose_context(ts, None, None, (), options)
    assert context == 2.0, table
    spec = EmbeddingSpec("fake.tflite", "ab" * 32, 0.25, "fixed", dims)
    sound = fit_sound("rhythm", ts, spec, None, None, options)
    assert sound.spec.context_seconds == 2.0 and sound.summary["context_cv"] == table
    new = embed(rhythm(8, 0.7), 0.25)
    room_e = [embed(pcm, 0.25) for _, pcm in room]
    room_logits = np.concatenate([sound.logits(e.embeddings, None, e.starts) for e in room_e])
    assert np.mean(room_logits < sound.logits(new.embeddings, None, new.starts).max()) > 0.95
    by = {r["context_seconds"]: r for r in table}
    assert by[2.0]["rank"] > by[0.0]["rank"]
