"""Device strings, runtime choice, and every Edge TPU failure turned into a message."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edgekit.models import edgetpu
from edgekit.errors import DeviceError, EdgeTPUError, EdgekitWarning, FallbackWarning, ModelFileError
from edgekit.models.model import load_model
from edgekit.models.runtime import Device, make_interpreter, parse_device, runtime_info


@pytest.mark.parametrize(
    "text,kind,index,threads",
    [("cpu", "cpu", None, None), ("cpu:2", "cpu", 2, 2), ("usb", "usb", None, None),
     ("usb:1", "usb", 1, None), ("PCI", "pci", None, None), ("pci:0", "pci", 0, None)],
)
def test_device_strings(text, kind, index, threads):
    d = parse_device(text)
    assert (d.kind, d.index, d.threads) == (kind, index, threads)
    assert d.is_edgetpu == (kind != "cpu")


@pytest.mark.parametrize("text", ["gpu", "usb:", "cpu:x", "tpu:0", ""])
def test_bad_device_strings(text):
    with pytest.raises(DeviceError, match="cpu, cpu:N"):
        parse_device(text)


def test_thread_count_out_of_range():
    with pytest.raises(DeviceError, match="between 1 and 64"):
        parse_device("cpu:0")


def test_delegate_options_follow_libedgetpu():
    assert Device("usb", 1).delegate_options() == {"device": "usb:1"}
    assert Device("pci").delegate_options() == {"device": "pci"}


def test_runtime_is_litert_on_this_machine():
    rt = runtime_info()
    assert rt.name == "ai-edge-litert" and rt.version[0].isdigit()


def test_xnnpack_is_reported(models_dir):
    data = (models_dir / "yamnet_spectra_in.tflite").read_bytes()
    assert make_interpreter(data, "cpu").xnnpack is True
    assert make_interpreter(data, "cpu:1", xnnpack=False).xnnpack is False


def test_no_edgetpu_library_is_a_clear_error(models_dir, capsys):
    if edgetpu.status().library:
        pytest.skip("libedgetpu is installed here")
    with pytest.raises(EdgeTPUError, match="libedgetpu not found.*libedgetpu1-std"):
        load_model(models_dir / "yamnet_spectra_in_edgetpu.tflite", "usb")
    # The half-built Delegate's "Exception ignored in __del__" must not reach the user.
    assert "Exception ignored" not in capsys.readouterr().err


def test_edgetpu_model_on_cpu_names_its_twin(models_dir):
    with pytest.raises(EdgeTPUError, match="compiled for the Edge TPU.*yamnet_spectra_in.tflite"):
        load_model(models_dir / "yamnet_spectra_in_edgetpu.tflite", "cpu")


def test_fallback_cpu_warns_and_runs_the_twin(models_dir):
    with pytest.warns(FallbackWarning, match="Edge TPU"):
        m = load_model(models_dir / "yamnet_spectra_in_edgetpu.tflite", "usb", fallback="cpu")
    assert m.path.name == "yamnet_spectra_in.tflite" and str(m.device) == "cpu"
    assert m.run(np.zeros((1, 96, 64), np.float32)).shape == (521,)


def test_fallback_without_twin_says_so(tmp_path, models_dir):
    lone = tmp_path / "yamnet_spectra_in_edgetpu.tflite"
    lone.write_bytes((models_dir / "yamnet_spectra_in_edgetpu.tflite").read_bytes())
    with pytest.raises(EdgeTPUError, match="no CPU twin"):
        load_model(lone, "usb", fallback="cpu")


def test_cpu_model_on_edgetpu_device_warns(models_dir):
    if edgetpu.status().library:
        pytest.skip("libedgetpu is installed here")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_model(models_dir / "yamnet_spectra_in.tflite", "usb", fallback="cpu")
    assert any(issubclass(w.category, EdgekitWarning) and "not compiled for the Edge TPU" in str(w.message)
               for w in caught)


# --- the system checks behind the messages, on fake sysfs/dev trees --------------------------

def fake_usb(tmp_path, vid, pid):
    dev = tmp_path / "sys" / "2-1"
    dev.mkdir(parents=True)
    for name, value in (("idVendor", vid), ("idProduct", pid), ("busnum", "2"), ("devnum", "7")):
        (dev / name).write_text(value + "\n")
    return tmp_path / "sys"


@pytest.mark.parametrize("vid,pid", edgetpu.USB_IDS)
def test_usb_accelerator_without_udev_rule(tmp_path, monkeypatch, vid, pid):
    sysfs = fake_usb(tmp_path, vid, pid)
    monkeypatch.setattr(edgetpu, "_find_library", lambda: "/usr/lib/libedgetpu.so.1")
    monkeypatch.setattr(edgetpu, "_udev_rule_present", lambda *a: False)
    st = edgetpu.status(str(sysfs), str(tmp_path / "apex_*"))
    assert st.usb_devices == ("2-1",) and not st.usb_writable and not st.usable
    assert "udev rules for 1a6e:089a and 18d1:9302" in st.reason()


def test_pcie_without_apex_group(tmp_path, monkeypatch):
    monkeypatch.setattr(edgetpu, "_find_library", lambda: "/usr/lib/libedgetpu.so.1")
    node = tmp_path / "apex_0"
    node.write_text("")
    monkeypatch.setattr(edgetpu.os, "access", lambda path, mode: False)
    st = edgetpu.status(str(tmp_path / "nosys"), str(tmp_path / "apex_*"))
    assert st.pci_devices == (str(node),)
    assert "`apex` group" in st.reason()


def test_no_device_at_all(tmp_path, monkeypatch):
    monkeypatch.setattr(edgetpu, "_find_library", lambda: "/usr/lib/libedgetpu.so.1")
    st = edgetpu.status(str(tmp_path / "nosys"), str(tmp_path / "apex_*"))
    assert "no Edge TPU device found" in st.reason()


def test_udev_rule_detection(tmp_path):
    rules = tmp_path / "60-edgetpu.rules"
    rules.write_text('SUBSYSTEM=="usb",ATTRS{idVendor}=="1a6e",GROUP="plugdev"\n'
                     'SUBSYSTEM=="usb",ATTRS{idVendor}=="18d1",GROUP="plugdev"\n')
    assert edgetpu._udev_rule_present([str(tmp_path)])
    assert not edgetpu._udev_rule_present([str(tmp_path / "none")])


def test_runtime_version_mismatch_message():
    raw = ("Failed to load delegate from libedgetpu.so.1: Failed to prepare for TPU. Failed precondition: "
           "Package requires runtime version (14), which is newer than this runtime version (13).")
    msg = edgetpu.explain_delegate_failure(Device("usb"), raw)
    assert "compiled for Edge TPU runtime 14" in msg and "version 13" in msg
    assert "upgrade libedgetpu1-std" in msg


# --- the probe: a separate, fresh process with a time limit; the stderr capture keeps others' lines --

def test_probe_never_forks_this_process(models_dir, monkeypatch):
    # The daemon probes a reloaded model while paho, PortAudio and gpiozero threads run; a bare
    # fork of a threaded process can deadlock in the child on a lock another thread held.
    import os

    from edgekit.models import runtime

    def no_fork():
        raise AssertionError("probe must not fork this (threaded) process")

    monkeypatch.setattr(os, "fork", no_fork)
    runtime.probe((models_dir / "yamnet_spectra_in.tflite").read_bytes(), "yamnet_spectra_in.tflite")
    with pytest.raises(ModelFileError, match="rejected the model"):
        runtime.probe(b"TFL3" * 100, "junk.tflite")


def test_probe_reports_a_crash_and_stops_a_hang(monkeypatch):
    from edgekit.models import runtime

    monkeypatch.setattr(runtime, "_PROBE_CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(ModelFileError, match=r"m.tflite: the TFLite runtime crashed \(SIGSEGV\).*corrupt"):
        runtime.probe(b"x", "m.tflite")
    monkeypatch.setattr(runtime, "_PROBE_CHILD", "import time; time.sleep(60)")
    with pytest.raises(ModelFileError, match="did not finish reading this model within 1 s"):
        runtime.probe(b"x", "m.tflite", timeout=1)


def test_stderr_capture_hands_back_what_other_threads_wrote(capfd):
    import os
    import threading

    from edgekit.models.runtime import _CapturedStderr

    with _CapturedStderr() as captured:
        t = threading.Thread(target=lambda: os.write(2, b"edgekit.service: a line from another thread\n"))
        t.start()
        t.join()
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"ERROR: the runtime's own complaint\n")
    assert "the runtime's own complaint" in captured.text()  # for the error message
    err = capfd.readouterr().err
    assert "a line from another thread" in err
    assert "XNNPACK" not in err and "own complaint" not in err
