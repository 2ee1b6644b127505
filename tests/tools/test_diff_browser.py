"""The diff HTML report as a reader sees it: opened in headless Chromium (Debian's package,
which .ci/run installs with the Noto CJK fonts), with the network switched off, and the
screenshot checked — the charts were drawn by the inlined plotly.js, and Chinese text renders
as glyphs, not as the identical boxes ("tofu") of a missing font."""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pytest

from yibao.core.generate import generate_claims
from yibao.dsl.cli import main
from yibao.dsl.commands._diff_html import COLOUR_A, COLOUR_B, FONT_STACK

from .conftest import CONFIGS


def chromium() -> str:
    """The headless browser; CI must have it (.ci/run installs it), elsewhere the test skips."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed: .ci/run installs it with apt-get")
    pytest.skip("no chromium on this machine (apt-get install chromium fonts-noto-cjk)")


def screenshot(page, png, width: int, height: int) -> np.ndarray:
    """Chromium's screenshot of ``page`` as an RGB array; every host name resolves to nothing,
    so a page that needs the network shows it."""
    from PIL import Image
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={png.parent / 'profile'}",
           f"--window-size={width},{height}", "--virtual-time-budget=20000",
           f"--screenshot={png}", page.resolve().as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=180, check=True)
    with Image.open(png) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def pixels_of(shot: np.ndarray, colour: str, tolerance: int = 12) -> int:
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    return int((np.abs(shot - rgb).max(axis=2) <= tolerance).sum())


def ink(shot: np.ndarray) -> np.ndarray:
    """Where something darker than the white page is drawn."""
    return shot.min(axis=2) < 160


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    changed = root / "changed"
    changed.mkdir()
    text = (CONFIGS / "reference" / "policy.yb").read_text(encoding="utf-8")
    (changed / "policy.yb").write_text(text.replace("tier2, 3: 85%", "tier2, 3: 90%"),
                                       encoding="utf-8")
    pq.write_table(generate_claims(1_500, seed=11), root / "c.parquet")
    page = root / "report.html"
    assert main(["diff", str(CONFIGS / "reference"), str(changed),
                 str(root / "c.parquet"), "--html", str(page)]) == 0
    return page


def test_charts_are_drawn_offline(report, tmp_path):
    shot = screenshot(report, tmp_path / "report.png", 1100, 2400)
    # the bars of both policies are there: plotly.js ran from the page itself, offline
    assert pixels_of(shot, COLOUR_A) > 3_000 and pixels_of(shot, COLOUR_B) > 3_000
    # the title line, the summary and the first chart all carry text or marks
    top = ink(shot[:120]).sum()
    assert top > 500, "the page's heading did not render"


def _text_page(folder, text: str):
    page = folder / f"text-{abs(hash(text))}.html"
    page.write_text(f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
                    f"<style>body{{margin:0;background:#fff;font-family:{FONT_STACK};"
                    f"font-size:48px}}</style></head><body><p>{text}</p></body></html>",
                    encoding="utf-8")
    return page


def test_chinese_renders_as_glyphs_not_boxes(tmp_path):
    """With a missing CJK font every character is the same box, so two different strings of
    the same length give the same picture; real glyphs differ a lot and differ per string."""
    a, b = "基本医保住院", "大病保险救助"
    shot_a = screenshot(_text_page(tmp_path, a), tmp_path / "a.png", 600, 160)
    shot_b = screenshot(_text_page(tmp_path, b), tmp_path / "b.png", 600, 160)
    ink_a, ink_b = ink(shot_a), ink(shot_b)
    assert ink_a.sum() > 300 and ink_b.sum() > 300, "no text rendered"
    differing = (ink_a != ink_b).sum()
    assert differing > 0.3 * max(ink_a.sum(), ink_b.sum()), \
        "two different Chinese strings render alike: the CJK glyphs are boxes (tofu)"
    # the same string twice renders identically, so the difference above is the glyphs
    again = screenshot(_text_page(tmp_path, a), tmp_path / "a2.png", 600, 160)
    assert (ink(again) == ink_a).all()
