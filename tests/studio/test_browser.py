"""The studio in a real headless browser, as a city team would use it (issue 18).

One session over a git-tracked copy of Jinhua's policy, in order: open the city, introduce an
error and see ``yibao check``'s diagnostic at its line, fix it, edit a table in the grid, run a
claims file, explain a claim (the same text as ``yibao explain``) and follow a step to its
policy line, turn the claim into a test case and run the tests, then change a ratio and
compare the working copy with the last commit. The functions run in file order and share
the page; a screenshot of each stage goes to tests/studio/artefacts/.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ARTEFACTS = Path(__file__).resolve().parent / "artefacts"  # as conftest.py
SESSION = {}  # what one step hands the next (the claim explained)

pytestmark = pytest.mark.studio
WAIT = 30  # seconds: the first run compiles and settles on a shared 2-core machine
# Comparing settles the claims file under two policies and draws the charts; running the
# tests settles every case. On a loaded 2-core machine (parallel test suites) these took
# longer than WAIT and the session failed while working; a longer bound costs nothing when
# the page answers in time.
SLOW_WAIT = 120


def wait(driver, condition, seconds=WAIT):
    from selenium.common.exceptions import (NoSuchElementException,
                                            StaleElementReferenceException, TimeoutException)
    from selenium.webdriver.support.ui import WebDriverWait
    # the page re-renders parts as the server answers: an element found a moment ago may be gone
    ignored = (NoSuchElementException, StaleElementReferenceException)
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.1,
                             ignored_exceptions=ignored).until(lambda d: condition())
    except TimeoutException:
        shot(driver, "timed-out")  # what the page showed instead
        raise


def by_id(driver, ident):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.ID, ident)


def css(driver, selector):
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, selector)


def shot(driver, name):
    driver.save_screenshot(str(ARTEFACTS / f"{name}.png"))


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yibao.dsl.cli", *args],
                          capture_output=True, text=True, timeout=120)


TAB_MARK = {"edit": "policy-editor", "tables": "table-grid", "run": "run-button",
            "explain": "explain-search", "tests": "run-tests", "compare": "compare-button"}


def open_tab(driver, key):
    """Click a tab and wait for its panel (Quasar renders a panel when it is shown)."""
    by_id(driver, f"tab-{key}").click()
    wait(driver, lambda: css(driver, f"#{TAB_MARK[key]}") and css(
        driver, f"#{TAB_MARK[key]}")[0].is_displayed())


def line_of(city, text: str) -> int:
    """The (1-based) line of the policy file of ``city`` that first contains ``text``, so the
    steps follow the policy as it is edited rather than pinned line numbers."""
    lines = (city / "policy.yb").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def type_at_line(driver, line: int, *keys):
    """Put the cursor at the end of ``line`` of the policy editor and press ``keys``."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    content = css(driver, "#policy-editor .cm-content")[0]
    content.click()
    chain = ActionChains(driver).key_down(Keys.CONTROL).send_keys(Keys.HOME).key_up(Keys.CONTROL)
    for _ in range(line - 1):
        chain = chain.send_keys(Keys.DOWN)
    chain.send_keys(Keys.END).send_keys(*keys).perform()


def diagnostics(driver) -> list:
    return [(e.get_attribute("data-code"), e.get_attribute("data-line"), e.text)
            for e in css(driver, "#diagnostics .yb-diagnostic")]


def save_policy(driver, city, saved):
    """Click Save and wait until the file on disk satisfies ``saved(text)`` (the status line
    may still say "saved" from an earlier save)."""
    by_id(driver, "save-policy").click()
    wait(driver, lambda: saved((city / "policy.yb").read_text(encoding="utf-8")))
    assert "saved" in by_id(driver, "save-status").text


def test_open_city(browser, studio):
    browser.get(studio)
    wait(browser, lambda: "compiles" in by_id(browser, "check-status").text)
    assert "金华" in browser.find_element("css selector", ".cm-content").text
    assert css(browser, "#policy-editor .yb-kw"), "keywords are highlighted"
    shot(browser, "01-open")


def test_error_shows_check_diagnostic_at_its_line(browser, city):
    from selenium.webdriver.common.keys import Keys
    base = line_of(city, "base in_scope - self_first")
    type_at_line(browser, base, "_x")  # base in_scope - self_first_x: an unknown name
    [(code, line, text)] = wait(browser, lambda: diagnostics(browser))
    assert (code, line) == ("E201", str(base))
    assert css(browser, "#policy-editor .cm-line.yb-error-line")
    assert "error" in by_id(browser, "check-status").text
    shot(browser, "02-error")
    save_policy(browser, city, lambda t: "self_first_x" in t)
    checked = cli("check", str(city))
    assert checked.returncode == 1   # findings (docs/cli.md)
    # the page shows what `yibao check` prints: code, message, the line with its caret, help
    assert text.strip() in checked.stderr, (text, checked.stderr)
    type_at_line(browser, base, Keys.BACKSPACE, Keys.BACKSPACE)
    wait(browser, lambda: "compiles" in by_id(browser, "check-status").text
         and not diagnostics(browser))
    save_policy(browser, city, lambda t: "self_first_x" not in t)
    assert cli("check", str(city)).returncode == 0


def test_table_edited_as_grid_saved_as_csv(browser, city):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    open_tab(browser, "tables")
    by_id(browser, "table-file").click()
    wait(browser, lambda: [o for o in css(browser, ".q-menu .q-item") if o.text == "signed.csv"])
    [o for o in css(browser, ".q-menu .q-item") if o.text == "signed.csv"][0].click()
    cell = '#table-grid .ag-row[row-index="0"] .ag-cell[col-id="c1"]'
    wait(browser, lambda: css(browser, cell) and css(browser, cell)[0].text == "484")
    # typing on a focused cell starts editing it with what is typed (AG Grid)
    ActionChains(browser).click(css(browser, cell)[0]).pause(0.3).send_keys("485").pause(
        0.3).send_keys(Keys.ENTER).perform()
    wait(browser, lambda: css(browser, cell)[0].text == "485")
    shot(browser, "03-table")
    by_id(browser, "save-table").click()
    wait(browser, lambda: "saved" in by_id(browser, "table-status").text)
    text = (city / "signed.csv").read_text(encoding="utf-8")
    assert text.startswith("# ASSUMED"), "the comment lines are kept"
    assert "\nH01,485\n" in text and "H01,484" not in text


def test_run_claims_file(browser, city):
    claims = city.parent / "claims.parquet"
    assert cli("generate", "-n", "3000", "--start-year", "2021", "--seed", "5",
               "--out", str(claims)).returncode == 0
    open_tab(browser, "run")
    box = [e for e in css(browser, "input") if e.get_attribute("placeholder") ==
           "/path/to/claims.parquet"][0]
    box.send_keys(str(claims))
    by_id(browser, "run-button").click()
    wait(browser, lambda: css(browser, "#run-headline"), SLOW_WAIT)
    headline = by_id(browser, "run-headline").text
    assert "3,000 结算 settled" in headline and str(claims) in headline
    wait(browser, lambda: css(browser, "#layer-chart canvas"))
    assert "基本医保住院" in by_id(browser, "layer-table").text
    assert "inpatient_drg" in by_id(browser, "pool-table").text  # Jinhua's DRG points pool
    wait(browser, lambda: "done" in by_id(browser, "run-stage").text)
    shot(browser, "04-run")


def test_explain_a_claim_like_the_cli(browser, city):
    open_tab(browser, "explain")
    person = _a_person_with_several_claims(city.parent / "claims.parquet")
    by_id(browser, "explain-search").send_keys(person)
    wait(browser, lambda: _matches(browser, person))
    claim_id = _matches(browser, person)[-1]
    css(browser, f'#explain-matches .yb-claim[data-claim="{claim_id}"]')[0].click()
    wait(browser, lambda: f"claim {claim_id}" in by_id(browser, "explanation").text)
    shown = [e.text.strip() for e in css(browser, "#explanation .font-mono")]
    told = cli("explain", str(city), str(city.parent / "claims.parquet"),
               "--claim-id", claim_id)
    assert told.returncode == 0, told.stderr
    assert [x for x in shown if x] == [x.strip() for x in told.stdout.splitlines() if x.strip()]
    shot(browser, "05-explain")
    link = css(browser, "#explanation .yb-step-link")[0]
    line = int(link.get_attribute("data-line"))
    link.click()
    wait(browser, lambda: css(browser, "#policy-editor .cm-line.yb-focus-line"))
    focused = css(browser, "#policy-editor .cm-line.yb-focus-line")[0].get_attribute("textContent")
    source = (city / "policy.yb").read_text(encoding="utf-8").splitlines()[line - 1]
    assert focused == source and focused.startswith("layer ")
    shot(browser, "06-step-link")
    open_tab(browser, "explain")
    SESSION["claim_id"] = claim_id


def _matches(driver, person) -> list:
    """The claim ids listed for the search, once every one listed is the person's."""
    from selenium.common.exceptions import StaleElementReferenceException
    try:
        found = [(e.get_attribute("data-claim"), e.text)
                 for e in css(driver, "#explain-matches .yb-claim")]
    except StaleElementReferenceException:  # re-listed while typing
        return []
    return [cid for cid, _ in found] if found and all(
        t.endswith(person) for _, t in found) else []


def _a_person_with_several_claims(path) -> str:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    counts = pc.value_counts(pq.read_table(path, columns=["person_id"]).column("person_id"))
    best = max(counts.to_pylist(), key=lambda c: (c["counts"], c["values"]))
    return best["values"]


def test_claim_becomes_test_case_and_tests_run(browser, city):
    before = yaml.safe_load((city / "tests.yaml").read_text(encoding="utf-8"))
    by_id(browser, "make-case").click()
    wait(browser, lambda: len(yaml.safe_load((city / "tests.yaml").read_text("utf-8")))
         == len(before) + 1)
    added = yaml.safe_load((city / "tests.yaml").read_text(encoding="utf-8"))[-1]
    assert list(added["expect"]) == [SESSION["claim_id"]]
    assert (city / "tests.yaml").read_text(encoding="utf-8").startswith("# Hand-checked")
    open_tab(browser, "tests")
    by_id(browser, "run-tests").click()
    wait(browser, lambda: css(browser, "#test-verdict"), SLOW_WAIT)
    assert by_id(browser, "test-verdict").text == f"{len(before) + 1} 通过 passed, 0 失败 failed"
    assert css(browser, "#test-coverage")
    assert cli("test", str(city), "-q").returncode == 0  # the CLI agrees
    shot(browser, "07-tests")


def test_compare_working_copy_with_last_commit(browser, city):
    from selenium.webdriver.common.keys import Keys
    open_tab(browser, "edit")
    # tier1 at a level-3 hospital: 85% -> 80%
    type_at_line(browser, line_of(city, "tier1, 3: 85%"), *([Keys.BACKSPACE] * 3), "80%")
    wait(browser, lambda: "compiles" in by_id(browser, "check-status").text)
    save_policy(browser, city, lambda t: "tier1, 3: 80%" in t)
    assert "tier1, 3: 80%" in (city / "policy.yb").read_text(encoding="utf-8")
    open_tab(browser, "compare")
    by_id(browser, "compare-button").click()
    wait(browser, lambda: css(browser, "#compare-headline"), SLOW_WAIT)
    headline = by_id(browser, "compare-headline").text
    assert headline.startswith("last commit → working copy")
    fund = headline.split("基金 fund ")[1].split(" 元")[0]
    before, after = (float(x.replace(",", "")) for x in fund.split(" → "))
    assert after < before, headline  # a lower ratio: the fund pays less
    wait(browser, lambda: css(browser, "#compare-result .js-plotly-plot svg"),  # drawn charts
         SLOW_WAIT)
    shot(browser, "08-compare")
    open_tab(browser, "tests")
    by_id(browser, "run-tests").click()
    wait(browser, lambda: "失败 failed" in by_id(browser, "test-verdict").text
         and not by_id(browser, "test-verdict").text.endswith(" 0 失败 failed"), SLOW_WAIT)
    assert css(browser, '#test-results .yb-case[data-passed="no"]')
    shot(browser, "09-tests-fail")


def test_nothing_written_outside_the_folder(browser, studio, city):
    """Only the files the session saved changed, each inside the folder; no temporary files
    left behind, and nothing (NiceGUI storage, say) beside the folder. It asks for the browser
    and the studio so that it skips with the session it checks (it failed alone before)."""
    changed = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=city,
                             capture_output=True, text=True, check=True).stdout.split("\n")
    assert sorted(x[3:] for x in changed if x) == ["policy.yb", "signed.csv", "tests.yaml"]
    assert sorted(p.name for p in city.parent.iterdir()) == ["claims.parquet", "jinhua"]
