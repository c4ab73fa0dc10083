"""End to end in headless Chromium against the real app served by uvicorn: sign in, see the overview with
its chart, open a finding, change its status, download the monthly CSV. Skipped (with the reason) when no
Chromium or chromedriver is installed (`apt-get install chromium chromium-driver`) or selenium is missing."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy.engine import Engine

from ledger.api import create_app
from ledger.settings import Settings
from tests.reports.conftest import Month

CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None
)
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no chromium/chromedriver binary on PATH (apt-get install chromium chromium-driver)",
)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture
def server(settings: Settings, engine: Engine) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[tuple[Any, Path]]:
    downloads = Path(tempfile.mkdtemp(prefix="tokenledger-downloads-"))
    profile = tempfile.mkdtemp(prefix="tokenledger-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver, downloads
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
    shutil.rmtree(downloads, ignore_errors=True)


def test_an_admin_signs_in_reads_the_month_changes_a_finding_and_downloads_the_csv(
    server: str, browser: tuple[Any, Path], october: Month
) -> None:
    driver, downloads = browser
    wait = WebDriverWait(driver, 10)

    driver.get(f"{server}/report/?period=2026-10")
    assert "/report/signin" in driver.current_url
    driver.find_element(By.NAME, "key").send_keys(october.key("admin"))
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

    wait.until(expected_conditions.title_contains("Overview 2026-10"))
    chart = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "canvas[data-chart][data-drawn=true]"))
    assert chart.size["height"] > 100
    assert "2,532.50 USD" in driver.find_element(By.TAG_NAME, "main").text

    driver.find_element(By.LINK_TEXT, "Findings").click()
    wait.until(expected_conditions.title_contains("Findings 2026-10"))
    driver.find_element(By.LINK_TEXT, "quantity_mismatch").click()
    wait.until(expected_conditions.title_contains(f"Finding #{october.finding_id}"))
    assert driver.find_element(By.CSS_SELECTOR, "#finding-series[data-drawn=true]")
    Select(driver.find_element(By.NAME, "status")).select_by_value("disputed")
    driver.find_element(By.NAME, "note").send_keys("ticket 4411 with OpenAI")
    driver.find_element(By.CSS_SELECTOR, "form.status-change button").click()
    wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "status"), "disputed"))
    assert "ticket 4411 with OpenAI" in driver.find_element(By.TAG_NAME, "main").text

    driver.find_element(By.LINK_TEXT, "Monthly report").click()
    wait.until(expected_conditions.title_contains("Monthly report 2026-10"))
    driver.find_element(By.LINK_TEXT, "CSV").click()
    csv_file = downloads / "tokenledger-2026-10.csv"
    WebDriverWait(driver, 10).until(lambda _d: csv_file.exists())
    assert (
        csv_file.read_text(encoding="utf-8").splitlines()[-1]
        == "TOTAL,,,1740000,1300000,,2710.25,2532.5,120.5,5.02,USD,2"
    )
