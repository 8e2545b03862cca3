"""Soundscapes: the same seed gives the same audio and annotations, and SNRs come out as asked."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from edgekit.evaluate.annotations import read_annotations
from edgekit.evaluate.soundscape import MixSpec, active_part, build

RATE = 16000


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two labels of tone bursts padded with near-silence; background: noise files of varying level."""
    root = tmp_path_factory.mktemp("mix")
    rng = np.random.default_rng(7)
    t = np.arange(int(1.5 * RATE)) / RATE
    for label, f0 in (("beep", 1000.0), ("hum", 220.0)):
        (root / "targets" / label).mkdir(parents=True)
        for i in range(3):
            tone = 0.5 * np.sin(2 * np.pi * f0 * (1 + 0.1 * i) * t)
            clip = np.concatenate([1e-4 * rng.standard_normal(RATE), tone, 1e-4 * rng.standard_normal(RATE)])
            sf.write(root / "targets" / label / f"{label}{i}.flac", clip, RATE, subtype="PCM_16")
    (root / "bg").mkdir()
    for i, level in enumerate((0.01, 0.05, 0.2)):
        sf.write(root / "bg" / f"bg{i}.wav", level * rng.standard_normal(20 * RATE), RATE, subtype="PCM_16")
    return root


def test_active_part_trims_the_silence_around_the_sound():
    x = np.concatenate([np.zeros(RATE), 0.5 * np.ones(RATE // 2), np.zeros(RATE)]).astype(np.float32)
    y = active_part(x)
    assert RATE // 2 <= len(y) <= RATE // 2 + 4 * 320


def test_same_seed_same_soundscape_other_seed_other(folders, tmp_path):
    spec = MixSpec(seed=3, gap=(1.0, 3.0))
    a = build(folders / "targets", [folders / "bg"], tmp_path / "a.flac", spec, tsv=tmp_path / "a.tsv")
    b = build(folders / "targets", [folders / "bg"], tmp_path / "b.flac", spec, tsv=tmp_path / "b.tsv")
    build(folders / "targets", [folders / "bg"], tmp_path / "c.flac", MixSpec(seed=4, gap=(1.0, 3.0)))
    xa, xb, xc = (sf.read(tmp_path / f"{n}.flac", dtype="int16")[0] for n in "abc")
    assert np.array_equal(xa, xb) and a.events == b.events
    assert (tmp_path / "a.tsv").read_text().replace("a.flac", "b.flac") == (tmp_path / "b.tsv").read_text()
    assert not (len(xa) == len(xc) and np.array_equal(xa, xc))
    assert len(a.events) >= 8 and {e.label for e in a.events} == {"beep", "hum"}
    assert a.seconds == pytest.approx(60.0, abs=0.05)
    # The TSV reads back as what was mixed, and events never overlap each other.
    ann = read_annotations(tmp_path / "a.tsv")
    assert [(e.onset, e.label) for e in ann.events] == [(round(e.onset, 4), e.label) for e in a.events]
    assert all(e1.offset <= e2.onset for e1, e2 in zip(a.events, a.events[1:]))


def test_snr_is_as_asked_relative_to_the_background_over_the_event(folders, tmp_path):
    spec = MixSpec(seed=11, gap=(0.5, 2.0), snr=(0.0, 20.0))
    mixed = build(folders / "targets", [folders / "bg"], tmp_path / "m.wav", spec)
    build(folders / "targets", [folders / "bg"], tmp_path / "bg.wav", spec, with_events=False)
    x = sf.read(tmp_path / "m.wav", dtype="float64")[0]
    bg = sf.read(tmp_path / "bg.wav", dtype="float64")[0]
    assert len(x) == len(bg)
    asked, measured = [], []
    for e in mixed.events:
        a, b = round(e.onset * RATE), round(e.offset * RATE)
        sig = x[a:b] - bg[a:b]
        measured.append(10 * np.log10(np.mean(sig ** 2) / np.mean(bg[a:b] ** 2)))
        asked.append(e.snr_db)
    assert len(asked) >= 10 and np.ptp(asked) > 5  # a spread of SNRs, not one value
    np.testing.assert_allclose(measured, asked, atol=0.3)
    # Outside the events the mix is the background alone.
    mask = np.ones(len(x), bool)
    for e in mixed.events:
        mask[round(e.onset * RATE):round(e.offset * RATE)] = False
    assert np.max(np.abs(x[mask] - bg[mask])) <= 1 / 32768


def test_seconds_cuts_the_background(folders, tmp_path):
    s = build(folders / "targets", [folders / "bg"], tmp_path / "s.flac", MixSpec(seconds=25, seed=1))
    assert s.seconds == pytest.approx(25.0, abs=0.01)
    assert sf.info(tmp_path / "s.flac").frames == pytest.approx(25 * RATE, abs=160)
    assert all(e.offset <= 25.0 for e in s.events)


def test_a_background_longer_than_a_block_is_rendered_whole_with_only_its_edges_faded(tmp_path):
    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal(25 * RATE + 77)).astype(np.float32)  # 2.5 blocks, not whole frames
    sf.write(tmp_path / "long.wav", x, RATE, subtype="FLOAT")
    (tmp_path / "t" / "a").mkdir(parents=True)
    sf.write(tmp_path / "t" / "a" / "a.wav", np.ones(RATE, np.float32) * 0.1, RATE)
    s = build(tmp_path / "t", [tmp_path / "long.wav"], tmp_path / "out.wav", MixSpec(seed=0), with_events=False)
    y = sf.read(tmp_path / "out.wav", dtype="float64")[0]
    assert len(y) == len(x) + (-len(x)) % 160  # padded to whole 10 ms frames, nothing lost
    ramp = np.linspace(0, 1, 320)
    want = x.astype(np.float64).copy()
    want[:320] *= ramp
    want[-320:] *= ramp[::-1]
    np.testing.assert_allclose(y[: len(x)], want * s.scale, atol=1.5 / 32768)
    assert not np.any(y[len(x):])


def test_a_failed_build_leaves_the_previous_file_whole_and_no_part_file(folders, tmp_path, monkeypatch):
    """The soundscape is written beside its name and renamed into place: another run reading a shared
    cache never sees half a file, and an interrupted build keeps the previous one."""
    from edgekit.evaluate import soundscape

    spec = MixSpec(seed=3, gap=(1.0, 3.0))
    build(folders / "targets", [folders / "bg"], tmp_path / "a.flac", spec, tsv=tmp_path / "a.tsv")
    before = (tmp_path / "a.flac").read_bytes(), (tmp_path / "a.tsv").read_bytes()
    real = soundscape._background
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        if len(calls) == fail_at:
            raise OSError("disk went away")
        yield from real(*args, **kwargs)

    monkeypatch.setattr(soundscape, "_background", counting)
    fail_at = 0
    build(folders / "targets", [folders / "bg"], tmp_path / "count.flac", MixSpec(seed=9))
    (tmp_path / "count.flac").unlink()
    fail_at, calls[:] = len(calls), []  # the last recording rendered: part of the new file is written
    with pytest.raises(OSError):
        build(folders / "targets", [folders / "bg"], tmp_path / "a.flac", MixSpec(seed=9), tsv=tmp_path / "a.tsv")
    assert ((tmp_path / "a.flac").read_bytes(), (tmp_path / "a.tsv").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.flac", "a.tsv"]
