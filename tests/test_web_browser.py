"""The status page in a real browser: headless Chromium (Debian's package) driven by Selenium,
against `edgekit web` and `edgekit run` replaying a real smoke-alarm recording in real time.

The event appears with a player that loads its clip, the live score moves, a review is saved.
Screenshots are kept in the test's tmp folder (and copied to $EDGEKIT_ARTIFACTS when set; the
README's docs/status-page.png comes from EDGEKIT_SCREENSHOT=docs/status-page.png).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import absent

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser(tmp_path):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        absent("Chromium is not installed (apt-get install chromium chromium-driver; scripts/test does it)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service as DriverService
    except ImportError:
        absent("selenium is not installed (the test extra)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                "--window-size=1000,1300"):
        opts.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager reach for the network
    drv = webdriver.Chrome(options=opts, service=DriverService(executable_path=driver))
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()


def write_config(tmp_path: Path, models_dir: Path, source: Path) -> Path:
    cfg = tmp_path / "edgekit.toml"
    cfg.write_text(f"""
[model]
model = "{models_dir / 'yamnet_spectra_in.tflite'}"
[audio]
source = "{source}"
speed = "realtime"
hop_seconds = 0.1
[groups]
alarm = ["Smoke detector, smoke alarm", "Fire alarm", "Alarm", "Siren"]
[[rules]]
name = "smoke_alarm"
labels = ["alarm"]
enter = 0.5
release = 0.3
smoothing = "k_of_n"
k = 2
n = 3
hold = 2.0
[rules.gpio]
pin = 17
[[rules]]
name = "glass_break"
labels = ["Glass", "Shatter"]
enter = 0.4
release = 0.2
smoothing = "none"
[gpio]
pin_factory = "mock"
[log]
path = "{tmp_path / 'state' / 'events.jsonl'}"
""")
    return cfg


def wait_for(what: str, check, timeout: float = 60.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}")


def shot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / "screens" / name
    path.parent.mkdir(exist_ok=True)
    driver.save_screenshot(str(path))
    if os.environ.get("EDGEKIT_ARTIFACTS"):
        dest = Path(os.environ["EDGEKIT_ARTIFACTS"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest / name)
    return path


def test_status_page_in_chromium(tmp_path, browser, models_dir, audio_dir):
    from selenium.webdriver.common.by import By

    import numpy as np
    import soundfile as sf

    from edgekit.audio.files import read_audio

    # The real recording, then 12 s of quiet: the alarm ends (hold 2 s), its clip is written
    # (post-roll 2 s) and shows up while the daemon is still live.
    track = np.concatenate([read_audio(audio_dir / "smoke_alarm.wav"), np.zeros(12 * 16000, np.int16)])
    sf.write(tmp_path / "smoke_alarm_then_quiet.wav", track, 16000, subtype="PCM_16")
    cfg = write_config(tmp_path, models_dir, tmp_path / "smoke_alarm_then_quiet.wav")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("INVOCATION_ID", None)
    env.pop("STATE_DIRECTORY", None)
    web = subprocess.Popen([sys.executable, "-m", "edgekit", "web", "--config", str(cfg), "--listen",
                            f"127.0.0.1:{port}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    daemon = None
    try:
        url = f"http://127.0.0.1:{port}/"

        def up():
            try:
                return urllib.request.urlopen(url + "api/session", timeout=2).status == 200
            except OSError:
                return False

        wait_for("the web companion", up, 30)
        browser.get(url)
        assert browser.find_element(By.ID, "events-empty").is_displayed()
        daemon = subprocess.Popen([sys.executable, "-m", "edgekit", "run", "--config", str(cfg)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        # The live score moves: the smoke alarm's score in the legend takes several values.
        seen = set()

        def moving():  # read in the page: the legend is redrawn at every window
            seen.add(browser.execute_script(
                "const e = document.querySelector('.rule-score[data-rule=\"smoke_alarm\"]');"
                "return e ? e.textContent : null;"))
            return len(seen - {None}) >= 4

        wait_for("the live score to move", moving, 60)
        assert browser.find_element(By.ID, "mic").text == "mic heard"
        shot(browser, tmp_path, "live.png")

        # The event, with a player that loads its clip, while the daemon still runs.
        item = wait_for("the event in the list",
                        lambda: browser.find_elements(By.CSS_SELECTOR, "#events li audio"), 40)[0]
        assert daemon.poll() is None
        li = item.find_element(By.XPATH, "./ancestor::li")
        assert "smoke_alarm" in li.text and "Smoke detector, smoke alarm" in li.text
        loaded = wait_for("the clip to load", lambda: browser.execute_script(
            "const a = arguments[0]; return a.readyState >= 1 && a.duration > 0 ? a.duration : null;", item), 30)
        assert loaded > 2.0
        spec = li.find_element(By.CSS_SELECTOR, "img.spec")
        wait_for("the spectrogram", lambda: browser.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 100;", spec), 30)
        li.find_element(By.CSS_SELECTOR, "input").send_keys("test run")
        li.find_element(By.CSS_SELECTOR, "button.false-alarm").click()
        wait_for("the review to be saved", lambda: "false alarm" in li.find_element(By.CSS_SELECTOR, ".verdict").text)
        (review,) = [json.loads(x) for x in (tmp_path / "state" / "reviews.jsonl").read_text().splitlines()]
        assert review["id"] == li.get_attribute("data-id") and review["verdict"] == "false_alarm"
        assert review["note"] == "test run"
        browser.execute_script("window.scrollTo(0, 0)")
        page = shot(browser, tmp_path, "status-page.png")
        assert daemon.wait(60) == 0, daemon.stdout.read().decode()
        browser.set_window_size(412, 915)  # a phone
        shot(browser, tmp_path, "phone.png")
        if os.environ.get("EDGEKIT_SCREENSHOT"):
            shutil.copy(page, ROOT / os.environ["EDGEKIT_SCREENSHOT"])
    finally:
        for p in (daemon, web):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    assert web.returncode == 0, web.stdout.read().decode()
