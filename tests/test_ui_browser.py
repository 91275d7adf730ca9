"""The web UI end to end in headless Chromium (Debian's chromium and chromedriver).

One UI process and one browser serve the module; the store is the one the JSON
tests use (_ui_support.fill_store). Each page leaves a screenshot in
``test-output/ui/`` for people to look at.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _ui_support import TEST_OUTPUT, UiProcess, chrome_driver, fill_store, fresh_profile
from conftest import PYTHON, clean_env, write_script

WAIT_S = 30


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return fill_store(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def ui(store: dict[str, Any]) -> Iterator[UiProcess]:
    server = UiProcess(store["store"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    profile = fresh_profile()
    driver = chrome_driver(profile)
    driver.set_page_load_timeout(WAIT_S)
    TEST_OUTPUT.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
            if last:
                return last
        except Exception as exc:  # the element is not there yet
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def css(driver: Any, selector: str) -> list[Any]:
    return driver.find_elements("css selector", selector)


def table_names(driver: Any) -> list[str]:
    return [cell.text for cell in css(driver, "#runs tbody td.name a")]


def shot(driver: Any, name: str) -> None:
    """The whole page (up to 8,000 CSS pixels tall), not only the window, as a PNG."""
    import base64

    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000)}
    image = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": {**clip, "scale": 1}},
    )
    (TEST_OUTPUT / name).write_bytes(base64.b64decode(image["data"]))


def fetch_status(driver: Any, url: str) -> int:
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then((r) => done(r.status), (e) => done(String(e)));",
        url,
    )


def severe_console_errors(driver: Any) -> list[str]:
    """Errors in the page's console, less the 400s the tests provoke on purpose."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "status of 400" not in entry["message"]
    ]


def test_table_lists_the_runs_and_filters_them(browser: Any, ui: UiProcess) -> None:
    browser.get(ui.url)
    wait_for(lambda: len(table_names(browser)) == 3, "three rows")
    assert sorted(table_names(browser)) == [
        "RandomForestClassifier",
        "train_loop.py",
        "train_loop.py",
    ]
    headers = [th.text for th in css(browser, "#runs thead th")]
    assert {"Status", "Name", "Started", "Duration", "Source", "Commit"} <= set(headers)
    shot(browser, "runs_table.png")
    box = browser.find_element("id", "filter")
    box.send_keys("metrics.training_score > 0.5 and params.max_depth = 10\n")
    wait_for(lambda: table_names(browser) == ["RandomForestClassifier"], "the filtered table")
    box.clear()
    box.send_keys("params.lr ~ 1\n")
    error = wait_for(lambda: browser.find_element("id", "filter-error").text, "the filter error")
    assert error.startswith("bad filter")
    box.clear()
    box.send_keys("\n")
    wait_for(lambda: len(table_names(browser)) == 3, "the whole table again")
    name_header = next(th for th in css(browser, "#runs thead th") if th.text == "Name")
    name_header.click()
    wait_for(lambda: table_names(browser)[0] == "RandomForestClassifier", "sorted by name")
    assert severe_console_errors(browser) == []


def test_run_page_shows_params_and_a_drawn_chart(browser: Any, ui: UiProcess, store: dict) -> None:
    run_id = store["by_name"]["RandomForestClassifier"][0]
    browser.get(f"{ui.url}run/{run_id}")
    wait_for(lambda: browser.execute_script("return document.body.dataset.loaded"), "the run")
    params = {
        row.find_element("css selector", "td").text: row.find_elements("css selector", "td")[1].text
        for row in css(browser, "#params tbody tr")
    }
    assert params["max_depth"] == "10" and params["n_estimators"] == "200"
    chart = browser.find_element("css selector", '.chart[data-key="training_score"]')
    assert chart.get_attribute("data-points") == "1"
    assert chart.find_elements("css selector", ".main-svg .scatterlayer .trace")
    assert css(browser, '#system [data-group="cpu"] .chart .main-svg')  # system metrics grouped
    assert browser.find_element("id", "run-status").text == "FINISHED"
    shot(browser, "run_page.png")
    assert severe_console_errors(browser) == []


def test_long_series_chart_and_artifacts(browser: Any, ui: UiProcess) -> None:
    run_id = ui.json("/api/runs?filter=params.lr%20%3D%200.05")["runs"][0]["run_id"]
    browser.get(f"{ui.url}run/{run_id}")
    wait_for(lambda: browser.execute_script("return document.body.dataset.loaded"), "the run")
    chart = browser.find_element("css selector", '.chart[data-key="grad_norm"]')
    assert chart.get_attribute("data-total") == "20000"
    assert int(chart.get_attribute("data-points")) < 20000
    assert "each bucket's min and max" in chart.text
    # the chart's y axis reaches the spike (51), though most points are near 1
    top = browser.execute_script(
        "const plot = document.querySelector('.plot[data-key=\"grad_norm\"]');"
        "return plot._fullLayout.yaxis.range[1];"
    )
    assert top > 50
    browser.find_element("css selector", '#artifact-list li[data-path="sample.png"] a.open').click()
    image = wait_for(
        lambda: browser.find_element("css selector", "#artifact-view img"), "the image"
    )
    wait_for(
        lambda: (
            browser.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth", image
            )
            == 160
        ),
        "the image to render",
    )
    shot(browser, "run_artifact_image.png")
    browser.find_element("css selector", '#artifact-list li[data-path="table.csv"] a.open').click()
    wait_for(lambda: "0.7" in browser.find_element("id", "artifact-view").text, "the CSV table")
    assert css(browser, "#artifact-view table th")[1].text == "accuracy"
    json_link = '#artifact-list li[data-path="configs/config.json"] a.open'
    browser.find_element("css selector", json_link).click()
    wait_for(lambda: '"layers": [' in browser.find_element("id", "artifact-view").text, "JSON")
    browser.find_element(
        "css selector", '#artifact-list li[data-path="report.html"] a.open'
    ).click()
    frame = wait_for(lambda: browser.find_element("css selector", "#artifact-view iframe"), "HTML")
    assert frame.get_attribute("sandbox") == "allow-scripts"
    shot(browser, "run_artifact_html.png")
    download = browser.find_element(
        "css selector", '#artifact-list li[data-path="notes.txt"] a.download'
    )
    assert download.get_attribute("href").endswith("path=notes.txt&download=1")
    base = f"/api/runs/{run_id}/artifact?path="
    assert fetch_status(browser, base + "..%2F..%2Fruns.db") == 400
    assert fetch_status(browser, base + "%2Fetc%2Fpasswd") == 400
    assert fetch_status(browser, base + "notes.txt") == 200


def test_compare_highlights_the_differing_params(browser: Any, ui: UiProcess) -> None:
    browser.get(ui.url)
    wait_for(lambda: len(table_names(browser)) == 3, "three rows")
    loops = [
        row.get_attribute("data-run-id")
        for row in css(browser, "#runs tbody tr")
        if "train_loop.py" in row.text
    ]
    for run_id in loops:
        browser.find_element("css selector", f'input[data-run-id="{run_id}"]').click()
    button = browser.find_element("id", "compare")
    assert button.is_enabled() and button.text == "Compare (2)"
    button.click()
    wait_for(lambda: browser.execute_script("return document.body.dataset.loaded"), "compare")
    assert "/compare?runs=" in browser.current_url
    rows = {row.get_attribute("data-key"): row for row in css(browser, "#params tbody tr")}
    assert "diff" in rows["lr"].get_attribute("class")
    assert "diff" not in (rows["optimizer_name"].get_attribute("class") or "")
    curves = browser.find_element("id", "curves")
    assert curves.get_attribute("data-traces") == "2"
    assert len(curves.find_elements("css selector", ".scatterlayer .trace")) == 2
    assert css(browser, "#parallel .parcoords")
    shot(browser, "compare.png")
    assert severe_console_errors(browser) == []


LIVE = """
import os, time
import autologagent

autologagent.log_param("lr", 0.01)
step = 0
while not os.path.exists("stop") and step < 2000:
    autologagent.log_metric("loss", 1.0 / (step + 1), step=step)
    step += 1
    time.sleep(0.02)
"""


def test_a_running_run_updates_without_a_reload(browser: Any, tmp_path: Path) -> None:
    store = tmp_path / "autologruns"
    script = write_script(tmp_path, "live.py", LIVE)
    env = clean_env(AUTOLOG_TRACKING_URI=str(store), AUTOLOG_SYSTEM_METRICS="false")
    training = subprocess.Popen([PYTHON, "-m", "autologagent", str(script)], cwd=tmp_path, env=env)
    server = None
    try:
        wait_for(lambda: (store / "runs.db").exists(), "the store")
        server = UiProcess(str(store))
        browser.get(server.url)
        row = "#runs tbody tr .status"
        wait_for(lambda: browser.find_element("css selector", row).text == "RUNNING", "RUNNING")
        browser.execute_script("window.notReloaded = true;")
        browser.find_element("css selector", "#runs tbody td.name a").click()
        wait_for(lambda: browser.execute_script("return document.body.dataset.loaded"), "run")
        browser.execute_script("window.notReloaded = true;")

        def points() -> int:
            chart = browser.find_element("css selector", '.chart[data-key="loss"]')
            return int(chart.get_attribute("data-total") or 0)

        first = wait_for(points, "the first points")
        wait_for(lambda: points() > first, "more points without a reload")
        shot(browser, "run_live.png")
        (tmp_path / "stop").touch()
        assert training.wait(timeout=60) == 0
        status = browser.find_element("id", "run-status")
        wait_for(lambda: status.text == "FINISHED", "FINISHED on the run page")
        assert browser.execute_script("return window.notReloaded") is True
        browser.back()
        wait_for(lambda: browser.find_element("css selector", row).text == "FINISHED", "the row")
    finally:
        (tmp_path / "stop").touch()
        training.wait(timeout=60)
        if server is not None:
            server.stop()
