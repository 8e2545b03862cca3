"""benchmarks/arm: the host-side parts quickly; the emulated armv7l front-end check (as root, a
minute or two once its root is cached; what CI runs); both architectures in full with -m slow."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "benchmarks" / "arm"
DATA = Path(os.environ.get("EDGEKIT_TEST_DATA") or ROOT.parent / "shared" / "data")
NO_DATA = f"shared test data not found at {DATA} (set EDGEKIT_TEST_DATA to the shared/data folder)"
HEX64 = re.compile(r"^[0-9a-f]{64}$")

CLIP_KEYS = {
    "rate", "channels", "decoded_sha256", "samples", "pcm_source", "pcm_sha256", "windows",
    "fixed_codes_sha256", "float_codes_sha256", "fixed_vs_float_max_lsb", "fixed_vs_float_equal_fraction",
    "top1_body", "top1_yamnet", "body_scores_sha256", "yamnet_scores_sha256",
    "top1_body_builtin", "top1_yamnet_builtin", "body_scores_builtin_sha256", "yamnet_scores_builtin_sha256",
}


def need_data() -> None:
    if not (DATA / "models" / "yamnet_spectra_in.tflite").exists() or not (DATA / "audio").is_dir():
        pytest.skip(NO_DATA)


@pytest.fixture(scope="module")
def host_check(tmp_path_factory) -> tuple[dict, Path, Path]:
    """check.py run once on this host: (document, its JSON file, its --dump folder)."""
    need_data()
    tmp = tmp_path_factory.mktemp("arm-check")
    out, dump = tmp / "host.json", tmp / "dump"
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "check.py"), "--data", str(DATA), "--dump", str(dump)],
        capture_output=True, text=True, timeout=300, cwd=tmp,
    )
    assert proc.returncode == 0, proc.stderr
    out.write_text(proc.stdout)
    return json.loads(proc.stdout), out, dump


def test_check_prints_the_expected_document(host_check):
    doc, _, dump = host_check
    assert doc["schema"] == "edgekit-arm-check/2"
    env = doc["environment"]
    assert env["machine"] == __import__("platform").machine()
    assert env["runtime"]["name"] in ("ai-edge-litert", "tflite-runtime") and env["runtime"]["version"]
    assert env["numpy"] == __import__("numpy").__version__
    assert HEX64.match(env["edgekit"]["source_sha256"])

    from edgekit.frontend.fixed import FixedFrontend
    from edgekit.quant import InputQuant

    fe = doc["frontend"]
    assert HEX64.match(fe["constants_sha256"]) and set(fe["constants"]) == set(
        FixedFrontend(InputQuant(**fe["input_quant"])).constants())
    if (DATA / "models" / "yamnet_test_audio.bin").exists():
        # The bytes this checkout's fixed front end makes of the raw test audio, in-process.
        import hashlib

        import numpy as np

        pcm = np.fromfile(DATA / "models" / "yamnet_test_audio.bin", dtype="<i2").astype(np.int16)
        codes = FixedFrontend(InputQuant(**fe["input_quant"])).waveform_to_codes(pcm)
        assert fe["golden"]["codes_sha256"] == hashlib.sha256(codes.tobytes()).hexdigest()

    clips = sorted(p.name for p in (DATA / "audio").iterdir() if p.suffix.lower() in (".wav", ".ogg", ".flac"))
    assert sorted(doc["clips"]) == clips
    for name, row in doc["clips"].items():
        assert CLIP_KEYS <= set(row), name
        assert row["windows"] >= 1
        for key in ("top1_body", "top1_yamnet", "top1_body_builtin", "top1_yamnet_builtin"):
            assert len(row[key]) == row["windows"] and all(isinstance(x, str) for x in row[key])
        assert row["fixed_vs_float_max_lsb"] <= 1
        assert row["pcm_source"] == "read_audio"
        assert (dump / f"{name}.npz").is_file()

    timing_words = {"time", "seconds", "ms", "us", "latency", "elapsed", "duration", "fps"}
    assert not [k for k in keys(doc) if timing_words & set(k.lower().split("_"))], "check.py must not report timings"


def keys(node) -> list[str]:
    if isinstance(node, dict):
        return list(node) + [k for v in node.values() for k in keys(v)]
    if isinstance(node, list):
        return [k for v in node for k in keys(v)]
    return []


def test_check_hashes_the_constant_tables(host_check):
    # The combined digest over FixedFrontend.constants(), recomputed here: what compare.py
    # then compares between the two machines.
    import hashlib

    import numpy as np

    from edgekit.frontend.fixed import FixedFrontend
    from edgekit.quant import InputQuant

    doc, _, _ = host_check
    tables = FixedFrontend(InputQuant(**doc["frontend"]["input_quant"])).constants()
    digest = hashlib.sha256()
    for name in sorted(tables):
        digest.update(np.ascontiguousarray(tables[name], dtype="<i8").tobytes())
    assert doc["frontend"]["constants_sha256"] == digest.hexdigest()


def run_compare(tmp_path: Path, host: dict, arm: dict, *extra: str) -> tuple[int, dict, str]:
    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "result.json"
    a.write_text(json.dumps(host))
    b.write_text(json.dumps(arm))
    proc = subprocess.run([sys.executable, str(SCRIPTS / "compare.py"), str(a), str(b), "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(out.read_text()), proc.stdout


def test_compare_passes_a_document_against_itself(host_check, tmp_path):
    doc, _, dump = host_check
    rc, result, text = run_compare(tmp_path, doc, doc, "--dumps", str(dump), str(dump))
    assert rc == 0 and result["passed"], text
    assert result["label"] == "qemu-user emulation, timings not meaningful"
    assert result["checks"]["fixed_codes_bit_exact_same_input"] and result["checks"]["top1_identical"]
    assert "PASSED" in text


def test_compare_fails_on_different_codes_and_reports_label_agreement(host_check, tmp_path):
    doc, _, _ = host_check
    arm = copy.deepcopy(doc)
    clip = next(iter(arm["clips"].values()))
    clip["fixed_codes_sha256"] = "0" * 64
    clip["top1_body"] = ["something else"] + clip["top1_body"][1:]
    rc, result, text = run_compare(tmp_path, doc, arm)
    assert rc == 1 and not result["passed"]
    assert not result["checks"]["fixed_codes_bit_exact_same_input"]
    row = next(r for r in result["clips"] if r["clip"] == next(iter(doc["clips"])))
    agreement = row["pipeline"]["body"]["top1"]
    assert agreement["agreement"] == pytest.approx((row["windows"] - 1) / row["windows"])
    assert agreement["disagreements"][0]["window"] == 0
    assert "FAILED" in text


def test_compare_uses_the_reference_pcm_rerun(host_check, tmp_path):
    # A machine that resampled differently re-runs on the host's samples (check.py --reference-pcm):
    # bit-exactness is judged on that re-run, the own-PCM codes are reported only.
    doc, _, _ = host_check
    arm = copy.deepcopy(doc)
    clip = next(iter(arm["clips"].values()))
    same = {k: v for k, v in clip.items() if k not in ("rate", "channels", "decoded_sha256", "samples")}
    clip.update(pcm_sha256="1" * 64, fixed_codes_sha256="2" * 64, reference_pcm=same)
    rc, result, _ = run_compare(tmp_path, doc, arm)
    assert rc == 0 and result["checks"]["fixed_codes_bit_exact_same_input"]
    assert not result["checks"]["pcm_identical"] and not result["checks"]["fixed_codes_identical_pipeline"]


def test_compare_fails_when_xnnpack_was_expected_and_absent(host_check, tmp_path):
    # What happened before the Pi's /sys and cpuinfo went into the chroot: cpuinfo failed, the
    # runtime fell back to its built-in kernels, and nothing said so.
    doc, _, _ = host_check
    arm = copy.deepcopy(doc)
    for name, info in arm["models"].items():
        info["xnnpack"], info["plan_delegate_nodes"] = False, 0
    arm["runtime_log"] = ["Error in cpuinfo: failed to parse the list of possible processors"]
    rc, result, text = run_compare(tmp_path, doc, arm, "--expect-xnnpack", "yes")
    assert rc == 1 and not result["passed"] and not result["checks"]["kernels_as_expected"]
    assert "kernels_as_expected" in text.splitlines()[-2]  # the "failed:" line names it
    rc, result, _ = run_compare(tmp_path, doc, arm, "--expect-xnnpack", "any")
    assert rc == 0 and result["checks"]["kernels_as_expected"]
    # The pairing is named after the kernels that really ran.
    assert any(p.endswith("built-in") and "XNNPACK vs" in p for p in result["pairings"])


def test_compare_fails_when_the_same_kernels_give_different_scores(host_check, tmp_path):
    doc, _, _ = host_check
    arm = copy.deepcopy(doc)
    next(iter(arm["clips"].values()))["body_scores_sha256"] = "3" * 64
    rc, result, _ = run_compare(tmp_path, doc, arm)
    assert rc == 1 and not result["checks"]["scores_identical_where_both_xnnpack"]
    arm = copy.deepcopy(doc)  # built-in kernels are each architecture's own code: reported only
    next(iter(arm["clips"].values()))["body_scores_builtin_sha256"] = "3" * 64
    rc, result, _ = run_compare(tmp_path, doc, arm)
    assert rc == 0 and not result["checks"]["scores_identical_same_input"]["body_builtin"]


def test_check_runs_without_a_resampler_on_the_host_samples(host_check, tmp_path):
    # 32-bit Pi OS has no soxr (piwheels only): check.py must run on another machine's samples.
    need_data()
    _, _, dump = host_check
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "nosoxr")}
    (tmp_path / "nosoxr").mkdir()
    (tmp_path / "nosoxr" / "soxr.py").write_text("raise ImportError('no soxr on this machine')\n")
    proc = subprocess.run([sys.executable, str(SCRIPTS / "check.py"), "--data", str(DATA), "--frontend-only",
                           "--reference-pcm", str(dump)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["environment"]["soxr"] is None and doc["frontend_only"]
    assert {row["pcm_source"] for row in doc["clips"].values()} == {"reference"}
    assert "top1_body" not in next(iter(doc["clips"].values()))
    host, _, _ = host_check
    rc, result, text = run_compare(tmp_path, host, doc, "--dumps", str(dump), str(dump))
    assert rc == 0 and result["checks"]["fixed_codes_bit_exact_same_input"], text
    assert not result["checks"]["pipeline_run_on_arm"] and result["pairings"] == {}
    # Without the other machine's samples it says what to give it.
    proc = subprocess.run([sys.executable, str(SCRIPTS / "check.py"), "--data", str(DATA), "--frontend-only"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2 and "--reference-pcm" in proc.stderr


def test_run_sh_parses_and_helps():
    bash = shutil.which("bash")
    assert bash
    assert subprocess.run([bash, "-n", str(SCRIPTS / "run.sh")], capture_output=True).returncode == 0
    helped = subprocess.run([bash, str(SCRIPTS / "run.sh"), "--help"], capture_output=True, text=True, timeout=30)
    assert helped.returncode == 0 and "EDGEKIT_ARM_ROOT" in helped.stdout and "--arch" in helped.stdout


def test_run_sh_refuses_a_work_area_inside_the_repository():
    inside = ROOT / "arm-chroot-must-not-be-here"
    proc = subprocess.run(["bash", str(SCRIPTS / "run.sh")], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "EDGEKIT_ARM_ROOT": str(inside)})
    assert proc.returncode == 2 and "inside the repository" in proc.stderr
    assert not inside.exists()


def emulated_run(tmp_path: Path, arch: str, *extra: str, timeout: int) -> dict:
    """run.sh for one architecture; skips (fails under CI=true) where it cannot run here."""
    from conftest import absent

    if not (DATA / "models" / "yamnet_spectra_in.tflite").exists() or not (DATA / "audio").is_dir():
        absent(NO_DATA)
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        absent(f"the emulated ARM checks compare an x86_64 Linux host with qemu-user; this is {sys.platform} "
               f"{os.uname().machine}")
    if os.geteuid() != 0:
        absent("benchmarks/arm/run.sh needs root (debootstrap, chroot, mount): run the tests as root")
    result_file = tmp_path / f"arm-emulated-{arch}.json"
    proc = subprocess.run(["bash", str(SCRIPTS / "run.sh"), "--arch", arch, "--result", str(result_file), *extra],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "EDGEKIT_HOST_PYTHON": sys.executable})
    if proc.returncode == 4:  # run.sh: no binfmt_misc here (an unprivileged container)
        absent(proc.stderr.strip().splitlines()[-1])
    assert result_file.exists(), proc.stderr[-4000:]
    result = json.loads(result_file.read_text())
    assert result["arm"]["machine"] == arch
    assert result["checks"]["fixed_codes_bit_exact_same_input"], proc.stdout
    assert proc.returncode == 0 and result["passed"], proc.stdout + proc.stderr[-2000:]
    return result


# In CI (not marked slow): both architectures in full. On this project's 2-core VM a cold root
# (debootstrap under qemu) takes armv7l ~7 min and aarch64 ~8.5 min, a cached one ~2 and ~3 min;
# see benchmarks/arm/README.md for the figures and why both fit in CI's 90 minutes.
@pytest.mark.timeout(2400)
def test_emulated_armv7l(tmp_path):
    """32-bit Pi OS (tflite-runtime 2.14, Debian's numpy 1.24, no soxr): the fixed front end's codes
    equal this host's, clip by clip (the check that caught the ldexp crash: a C long is 32 bits
    there); the models run on tflite-runtime's built-in kernels (its armv7l build has no XNNPACK)
    and give the scores of this host's built-in kernels for the int8 body."""
    result = emulated_run(tmp_path, "armv7l", timeout=2400)
    assert result["arm"]["runtime"] == {"name": "tflite-runtime", "version": "2.14.0"}
    assert int(result["arm"]["numpy"].split(".")[0]) < 2
    codes = result["codes_equal_same_input"]
    assert codes["of"] > 0 and codes["cells"] == codes["of"]
    assert not any(result["checks"]["xnnpack_arm"].values())
    assert result["checks"]["scores_identical_same_input"]["body_builtin"]


@pytest.mark.timeout(2400)
def test_emulated_aarch64_with_xnnpack(tmp_path):
    """64-bit Pi OS on a Pi 4's CPU: XNNPACK must load (it did not before the chroot had a /sys and
    a Pi's cpuinfo), and its scores must equal this host's XNNPACK scores bit for bit."""
    result = emulated_run(tmp_path, "aarch64", timeout=2400)
    assert all(result["checks"]["xnnpack_arm"][m] for m in ("yamnet.tflite", "yamnet_spectra_in.tflite"))
    assert result["checks"]["kernels_as_expected"] and result["checks"]["scores_identical_where_both_xnnpack"]
    assert result["pairings"]["x86_64 XNNPACK vs aarch64 XNNPACK"]


@pytest.mark.slow
@pytest.mark.timeout(0)  # minutes to hours, by design
def test_emulated_aarch64_pi5(tmp_path):
    """The same on a Pi 5's feature set (Cortex-A76: dotprod, fp16), where XNNPACK picks other
    int8 micro-kernels."""
    result = emulated_run(tmp_path, "aarch64", "--cpu", "cortex-a76", timeout=3600)
    assert result["checks"]["kernels_as_expected"] and result["checks"]["scores_identical_where_both_xnnpack"]
