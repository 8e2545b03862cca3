"""`edgekit bench`: record schema, reports, comparisons, Edge TPU rows. No speed is asserted here:
timings on a shared machine prove nothing; only that the numbers are consistent with each other."""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
from datetime import datetime

import numpy as np
import pytest

from edgekit.bench import inputs, report, runner, timing
from edgekit.machine import governor, governor_warning, host_label
from edgekit.commands import bench
from edgekit.errors import ConfigError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODELS = ["mobilenet_v1_0.25_128_quant.tflite", "yamnet_spectra_in.tflite", "yamnet.tflite",
          "mobilenet_v1_0.25_128_quant_edgetpu.tflite"]


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    return p.parse_args(list(argv))


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = bench.run(parse(*argv))
    return rc, out.getvalue()


@pytest.fixture(scope="module")
def outputs(models_dir, audio_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    paths = {"json": d / "r.json", "md": d / "r.md", "png": d / "r.png"}
    rc, stdout = run_cli(*(str(models_dir / m) for m in MODELS), "--device", "cpu:1,usb",
                         "--runs", "5", "--warmup", "1", "--xnnpack", "both", "--check-overhead",
                         "--pipeline", "--pipeline-seconds", "2", "--compare-published",
                         "--data", str(models_dir.parent), "--json", str(paths["json"]),
                         "--markdown", str(paths["md"]), "--plot", str(paths["png"]), "--quiet")
    return {"rc": rc, "stdout": stdout, "record": json.loads(paths["json"].read_text()), **paths}


def ok_rows(record):
    return [r for r in record["results"] if r["status"] == "ok"]


def test_record_has_machine_timestamp_version(outputs):
    rec = outputs["record"]
    assert outputs["rc"] == 0
    assert rec["schema"] == report.SCHEMA and rec["edgekit"]
    datetime.fromisoformat(rec["timestamp"])
    m = rec["machine"]
    for key in ("cpu", "cores", "governor", "os", "python", "numpy", "runtime", "board", "machine"):
        assert key in m
    assert m["cores"] >= 1 and m["governor"]
    assert m["runtime"]["name"] in ("ai-edge-litert", "tflite-runtime")


def test_every_row_has_the_same_keys(outputs):
    keys = set(runner.empty_row("x", "cpu", True))
    for r in outputs["record"]["results"]:
        assert set(r) == keys, r["model"]


def test_ok_rows_are_consistent(outputs):
    rows = ok_rows(outputs["record"])
    # 3 CPU models x XNNPACK on/off
    assert {(r["model"], r["xnnpack_requested"]) for r in rows} == {(m, x) for m in MODELS[:3] for x in (True, False)}
    for r in rows:
        lat = r["latency_ms"]
        assert lat["n"] == 5 == len(r["samples_ms"])
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert lat["min"] > 0 and lat["std"] >= 0
        assert min(r["samples_ms"]) == pytest.approx(lat["min"], abs=1e-4)
        assert r["fps"] == pytest.approx(1000 / lat["mean"], rel=1e-3)
        assert r["macs"] > 1e6 and r["params"] > 1e5
        assert r["init_ms"] > 0 and r["first_inference_ms"] > 0
        assert r["peak_rss_mib"] > 0
        assert r["runtime"]["version"]
        assert r["edgetpu"] is False
        if not r["xnnpack_requested"]:
            assert r["xnnpack"] is False


def test_inputs_are_real_not_zeros(outputs):
    for r in ok_rows(outputs["record"]):
        inp = r["input"]
        assert inp["synthetic"] is False
        assert inp["nonzero_fraction"] > 0.5 and inp["std"] > 0, r["model"]
    by_model = {r["model"]: r for r in ok_rows(outputs["record"])}
    assert "speech.wav" in by_model["yamnet_spectra_in.tflite"]["input"]["source"]
    assert by_model["yamnet.tflite"]["input"]["shape"] == [15600]
    assert "grace_hopper" in by_model["mobilenet_v1_0.25_128_quant.tflite"]["input"]["source"]
    # The recording is speech: a realistic input is recognised as such.
    assert by_model["yamnet_spectra_in.tflite"]["top1"]["label"] == "Speech"
    assert by_model["yamnet.tflite"]["top1"]["label"] == "Speech"


def test_overhead_check_fields(outputs):
    for r in ok_rows(outputs["record"]):
        ov = r["overhead"]
        assert ov["bare_n"] == 5 and ov["bare_p50_ms"] > 0
        assert ov["ratio_p50"] == pytest.approx(r["latency_ms"]["p50"] / ov["bare_p50_ms"], rel=1e-3)
    assert outputs["record"]["settings"]["timer_cost_ns"] >= 0


def test_edgetpu_rows_say_why(outputs):
    from edgekit.models.edgetpu import status

    st = status()
    if st.usable:
        pytest.skip("an Edge TPU is attached here")
    usb = [r for r in outputs["record"]["results"] if r["device"] == "usb"]
    assert len(usb) == len(MODELS)  # one row each, not one per XNNPACK setting
    for r in usb:
        assert r["status"] == f"no Edge TPU found: {st.reason()}"
        assert r["latency_ms"] is None


def test_edgetpu_model_on_cpu_row(outputs):
    (r,) = [r for r in outputs["record"]["results"]
            if r["model"].endswith("_edgetpu.tflite") and r["device"] == "cpu:1"]
    assert r["status"].startswith("needs an Edge TPU")
    assert "mobilenet_v1_0.25_128_quant.tflite" in r["status"]
    assert r["macs"] is None and "edgetpu-custom-op" in r["macs_note"]


def test_pipeline_rows(outputs):
    by = {(r["model"], r["xnnpack_requested"]): r for r in ok_rows(outputs["record"])}
    logmel = by[("yamnet_spectra_in.tflite", True)]["pipeline"]
    assert {(p["frontend"], p["mode"], p["hop_s"]) for p in logmel} == {
        (fe, "stream", hop) for fe in ("float", "fixed") for hop in (0.48, 0.1)}
    for p in logmel:
        assert p["patches"] > 0 and p["rtf_cpu"] > 0 and p["audio_s"] >= 2
    stream = {(p["frontend"], p["hop_s"]): p for p in logmel if p["mode"] == "stream"}
    # A 0.1 s hop makes ~4.8x the patches of a 0.48 s hop over the same audio.
    assert stream[("float", 0.1)]["patches"] > 3 * stream[("float", 0.48)]["patches"]
    waveform = by[("yamnet.tflite", True)]["pipeline"]
    assert {p["frontend"] for p in waveform} == {"in-graph"}
    assert by[("mobilenet_v1_0.25_128_quant.tflite", True)]["pipeline"] is None


def test_markdown_and_png_written(outputs):
    md = outputs["md"].read_text()
    assert md == outputs["stdout"]
    for text in ("| model | device | XNNPACK |", "p50", "## Machine", "governor", "## Pipeline",
                 "no Edge TPU found", "needs an Edge TPU", "## Published figures"):
        assert text in md
    for m in MODELS:
        assert m in md
    assert outputs["png"].read_bytes()[:8] == PNG_MAGIC


def test_published_check_on_this_machine(outputs):
    check = outputs["record"]["published_check"]
    published = report.load_published()
    matching = [n for n, c in published["device_classes"].items()
                if report.class_matches(outputs["record"]["machine"], c)]
    assert check["matching_classes"] == matching
    if not matching:
        assert check["summary"].startswith("no published device class matches this machine")
        assert all(e["verdict"].startswith("not comparable") for e in check["entries"])


def test_published_file_names_its_sources():
    pub = report.load_published()
    urls = {s["url"] for s in pub["sources"].values()}
    assert "https://coral.ai/docs/edgetpu/benchmarks" in urls
    figs = {(f["model"], f["class"]): f["ms"] for f in pub["figures"]}
    assert figs[("mobilenet_v1_1.0_224_quant_edgetpu.tflite", "rpi4-usb")] == 4.20
    assert figs[("mobilenet_v2_1.0_224_quant_edgetpu.tflite", "rpi4-usb")] == 4.55
    assert figs[("mobilenet_v1_1.0_224_quant.tflite", "coral-desktop-cpu")] == 53
    assert figs[("mobilenet_v2_1.0_224_quant.tflite", "coral-desktop-cpu")] == 51


def _fake_row(model, device, mean):
    r = runner.empty_row(model, device, True)
    r["latency_ms"] = {"n": 10, "min": mean, "p50": mean, "p90": mean, "p99": mean, "max": mean,
                       "mean": mean, "std": 0.0}
    r["fps"] = 1000 / mean
    return r


def test_published_tolerance_on_a_matching_machine():
    pi = {"machine": "armv7l", "cpu": "ARMv7 Processor rev 3 (v7l)", "board": "Raspberry Pi 4 Model B Rev 1.4"}
    rows = [_fake_row("mobilenet_v1_1.0_224_quant_edgetpu.tflite", "usb", 4.6),   # +9 %
            _fake_row("mobilenet_v2_1.0_224_quant_edgetpu.tflite", "usb:0", 6.5),  # +43 %
            _fake_row("mobilenet_v2_1.0_224_quant.tflite", "cpu:1", 51.0)]       # desktop class only
    rec = report.make_record(rows, pi, {})
    check = report.check_published(rec, report.load_published(), tolerance=0.3)
    assert check["matching_classes"] == ["rpi4-usb"]
    verdicts = {(e["model"], e["class"]): e["verdict"] for e in check["entries"]}
    assert verdicts[("mobilenet_v1_1.0_224_quant_edgetpu.tflite", "rpi4-usb")] == "within"
    assert verdicts[("mobilenet_v2_1.0_224_quant_edgetpu.tflite", "rpi4-usb")] == "outside"
    assert verdicts[("mobilenet_v2_1.0_224_quant.tflite", "coral-desktop-cpu")].startswith("not comparable")
    assert check["summary"].startswith("1 of 2 rows within")


def test_compare_ratios_come_from_the_records(outputs, tmp_path):
    a = outputs["record"]
    b = copy.deepcopy(a)
    for r in b["results"]:
        if r["latency_ms"]:
            r["latency_ms"]["p50"] *= 2
            r["fps"] /= 4
    for c in report.compare_rows(a, b):
        ra = next(r for r in a["results"] if (r["model"], r["device"], r["xnnpack_requested"]) ==
                  (c["model"], c["device"], c["xnnpack"]))
        if ra["latency_ms"]:
            assert c["p50_ratio"] == pytest.approx(2.0) and c["fps_ratio"] == pytest.approx(0.25)
            assert c["a_p50"] == ra["latency_ms"]["p50"]
        else:
            assert c["p50_ratio"] is None
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    report.write_json(a, str(pa))
    report.write_json(b, str(pb))
    rc, text = run_cli("compare", str(pa), str(pb))
    assert rc == 0
    assert "B/A p50" in text and "| 2.000 |" in text and "| 0.250 |" in text


def test_compare_rejects_non_records(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError):
        run_cli("compare", str(bad), str(bad))
    with pytest.raises(ConfigError):
        run_cli("compare", str(bad))


def test_json_to_stdout_is_only_json(models_dir):
    rc, text = run_cli(str(models_dir / "mobilenet_v1_0.25_128_quant.tflite"), "--runs", "5",
                       "--warmup", "1", "--json", "-", "--quiet")
    rec = json.loads(text)
    assert rc == 0 and rec["results"][0]["overhead"] is None  # no --check-overhead
    assert rec["results"][0]["latency_ms"]["n"] == 5


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError):
        bench.run(parse("m.tflite", "--runs", "0"))
    with pytest.raises(ConfigError):
        bench.run(parse("m.tflite", "--seconds", "-1"))
    assert parse("m.tflite", "--no-xnnpack").xnnpack == "off"
    assert parse("m.tflite").xnnpack == "on"


def test_missing_model_is_an_error_row(tmp_path):
    row = runner.bench_model(str(tmp_path / "nope.tflite"), "cpu:1", True, runner.Settings(runs=5, warmup=1))
    assert row["status"].startswith("error:") and row["latency_ms"] is None


BENCHED = ("yamnet_spectra_in.tflite", "yamnet.tflite", "mobilenet_v1_0.25_128_quant.tflite")


def test_synthetic_inputs_when_data_is_absent(models_dir, tmp_path):
    from edgekit.models.model import load_model

    settings = runner.Settings(data_dir=None)
    for name in BENCHED:
        (tmp_path / name).symlink_to(models_dir / name)  # a folder with no sample inputs beside
        inp = inputs.make_input(load_model(tmp_path / name, "cpu:1"), settings)
        d = inp.describe()
        assert inp.synthetic and "synthetic" in d["source"]
        assert d["nonzero_fraction"] > 0.5 and d["std"] > 0


def test_sample_inputs_are_found_beside_the_model(models_dir):
    """Without --data: grace_hopper.bmp in the model's folder, speech.wav in ../audio/ beside it."""
    from edgekit.models.model import load_model

    pytest.importorskip("PIL.Image")
    settings = runner.Settings(data_dir=None)
    for name in BENCHED:
        inp = inputs.make_input(load_model(models_dir / name, "cpu:1"), settings)
        assert not inp.synthetic, inp.source
        assert ("grace_hopper" if name.startswith("mobilenet") else "speech.wav") in inp.source


def test_bench_says_loudly_that_inputs_are_synthetic(models_dir, tmp_path, capsys, monkeypatch):
    from edgekit.cli import main

    monkeypatch.delenv("EDGEKIT_TEST_DATA", raising=False)
    (tmp_path / "m.tflite").symlink_to(models_dir / "yamnet_spectra_in.tflite")
    assert main(["bench", str(tmp_path / "m.tflite"), "--runs", "2", "--warmup", "0", "-q"]) == 0
    err = capsys.readouterr().err
    assert "SYNTHETIC INPUTS for m.tflite" in err and "--data" in err


def test_pictures_are_read_and_resized_with_pillow(models_dir):
    pytest.importorskip("PIL.Image")
    small, how = inputs.load_image(models_dir / "grace_hopper.bmp", 128, 96)
    assert small.shape == (128, 96, 3) and small.dtype == np.uint8 and small.std() > 10 and "Pillow" in how


def test_data_folder_comes_from_the_environment_only(tmp_path):
    assert inputs.default_data_dir({}) is None  # no guessing at folders beside a checkout
    assert inputs.default_data_dir({"EDGEKIT_TEST_DATA": str(tmp_path)}) == tmp_path
    with pytest.raises(ConfigError, match="EDGEKIT_TEST_DATA=.*no such folder"):
        inputs.default_data_dir({"EDGEKIT_TEST_DATA": str(tmp_path / "absent")})


def test_latency_stats_and_measure_counts():
    s = timing.latency_stats([1_000_000, 2_000_000, 3_000_000, 4_000_000])
    assert (s["min"], s["p50"], s["max"], s["mean"]) == (1.0, 2.5, 4.0, 2.5)
    calls = []
    samples, bare = timing.measure(lambda: calls.append(1), runner.Settings(runs=23, check_overhead=True, block=10))
    assert len(samples) == len(bare) == 23 and len(calls) == 46


def test_expand_one_row_where_nothing_can_run():
    from edgekit.models.edgetpu import status

    rows = runner.expand(["a.tflite", "b_edgetpu.tflite"], ["cpu:1", "usb"], [True, False])
    assert ("a.tflite", "cpu:1", True) in rows and ("a.tflite", "cpu:1", False) in rows
    assert ("b_edgetpu.tflite", "cpu:1", None) in rows
    if not status().usable:
        assert ("a.tflite", "usb", None) in rows and len(rows) == 5


def test_governor_and_labels(tmp_path):
    assert governor(tmp_path / "absent") == "unknown"
    (tmp_path / "g").write_text("ondemand\n")
    assert governor(tmp_path / "g") == "ondemand"
    assert "performance" in governor_warning("ondemand")
    assert governor_warning("performance") is None
    assert governor_warning("unknown")
    assert host_label({"hostname": "vm", "machine": "x86_64", "virtualised": True}) == "ci-x86_64-vm"
    assert host_label({"board": "Raspberry Pi 4 Model B Rev 1.4"}) == "raspberry-pi-4-model-b-rev-1.4"
