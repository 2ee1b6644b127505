"""Fixtures for the studio: a git-tracked copy of a bundled city, the studio serving it, and
headless Chromium (the OS package, driven through its chromedriver by Selenium).

Outside CI a machine without Chromium, chromedriver or the studio extra skips the browser
tests; in CI (``CI=true``, where ``.ci/run`` installs them) their absence is a failure."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTEFACTS = Path(__file__).resolve().parent / "artefacts"  # screenshots (git-ignored)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(what: str):
    if IN_CI:
        pytest.fail(f"{what} is missing; .ci/run installs it in CI")
    pytest.skip(f"{what} is not installed (the studio's browser tests need it)")


def chromium_paths() -> tuple:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        _missing("Chromium or chromedriver (apt-get install chromium chromium-driver)")
    return browser, driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc, seconds: float = 30) -> float:
    """Seconds until 127.0.0.1:port accepts a connection; fails if the process exits."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if proc.poll() is not None:
            raise AssertionError(f"the studio exited with {proc.returncode}: "
                                 f"{proc.stdout.read() if proc.stdout else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return time.monotonic() - start
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the studio did not answer on port {port} in {seconds}s")


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=studio@test", "-c", "user.name=studio test",
                    "-c", "commit.gpgsign=false", *args], cwd=folder, check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    """Jinhua's bundled policy, copied and committed in a fresh git repository."""
    root = tmp_path_factory.mktemp("studio")
    folder = root / "jinhua"
    shutil.copytree(REPO / "city_configs" / "jinhua", folder)
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "jinhua as bundled")
    return folder


@pytest.fixture(scope="module")
def studio(city):
    """The studio serving ``city`` (``yibao studio CITY --port N --no-browser``): its URL."""
    try:
        import nicegui  # noqa: F401
    except ImportError:
        _missing("the studio extra (pip install 'yibao[studio]')")
    port = free_port()
    # NiceGUI takes PYTEST_CURRENT_TEST for its own test harness; the studio is a plain process
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    proc = subprocess.Popen([sys.executable, "-m", "yibao.dsl.cli", "studio", str(city),
                             "--port", str(port), "--no-browser"], cwd=city.parent, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium (pip install 'yibao[studio-test]')")
    binary, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--lang=zh-CN"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    ARTEFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
