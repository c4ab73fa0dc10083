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
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import Engine

from ledger.demo.setup import DemoResult
from ledger.server import create_app
from ledger.settings import Settings
from tests.months import Month
from tests.reports.test_money_report import CENT, assert_table_foots, reconciliation_by_provider

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


PAGES = ("/", "/drift", "/spend", "/findings", "/providers", "/monthly", "/alerts")
WIDTHS = (1400, 390)


def test_every_page_at_desktop_and_phone_width_shows_all_its_columns_and_footed_totals(
    server: str, browser: tuple[Any, Path], demo_month: DemoResult
) -> None:
    """On the demo's month, each page, a finding's page and the drift page narrowed to an app at 1,400 px and at
    390 px: no table cut off or hidden behind a scroll bar, no sideways scrolling of the page, charts drawn,
    tables that add up; and the drift chart's USD figures are GET /v1/reconciliation's."""
    driver, _downloads = browser
    wait = WebDriverWait(driver, 10)
    driver.get(f"{server}/report/signin")
    driver.find_element(By.NAME, "key").send_keys(demo_month.read_key)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait.until(expected_conditions.title_contains("Overview"))
    finding_path = driver.find_element(By.CSS_SELECTOR, "#drift-split a").get_attribute("href")
    driver.get(finding_path)
    finding_link = driver.find_element(By.CSS_SELECTOR, "#findings-table tbody a").get_attribute("href")
    narrowed = f"{server}/report/drift?period={demo_month.period}&provider=anthropic&app=summarizer"
    checked = []
    for width in WIDTHS:
        driver.set_window_size(width, 1000)
        for path in (*(f"{server}/report{page}?period={demo_month.period}" for page in PAGES), finding_link, narrowed):
            driver.get(path)
            wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} at {width} px scrolls sideways by {overflow} px"
            cut = driver.execute_script(
                """const page = document.documentElement.clientWidth;
                   return [...document.querySelectorAll('main table')].filter(
                     t => t.offsetParent !== null && t.getBoundingClientRect().right > page + 1
                   ).map(t => t.id || t.className)"""
            )
            assert cut == [], f"{path} at {width} px: tables wider than the page: {cut}"
            charts = driver.find_elements(By.CSS_SELECTOR, "canvas[data-chart]")
            if charts:
                wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "canvas[data-chart][data-drawn=true]"))
            checked.append((path.removeprefix(server), width))
    assert len(checked) == len(WIDTHS) * (len(PAGES) + 2)

    driver.set_window_size(1400, 1000)
    driver.get(f"{server}/report/drift?period={demo_month.period}")
    charted = driver.execute_script(
        """const out = {};
           document.querySelectorAll('section.provider-money').forEach(section => {
             const data = JSON.parse(section.querySelector('script[type="application/json"]').textContent);
             const sum = set => set.data.reduce((a, v) => a + (v === null ? 0 : Math.round(Number(v) * 100)), 0);
             out[section.dataset.provider] = [sum(data.datasets[0]), sum(data.datasets[1])];
           });
           return out;"""
    )
    with httpx.Client(base_url=server) as http:
        api = reconciliation_by_provider(http, demo_month)
    assert set(charted) == set(api)
    for provider, (expected_cents, billed_cents) in charted.items():
        assert Decimal(expected_cents) / 100 == api[provider]["expected_cost"].quantize(CENT, ROUND_HALF_UP), provider
        if "billed_cost" in api[provider]:
            assert Decimal(billed_cents) / 100 == api[provider]["billed_cost"].quantize(CENT, ROUND_HALF_UP), provider
    for page, table in (("/", "providers-money"), ("/monthly", "monthly-table")):
        driver.get(f"{server}/report{page}?period={demo_month.period}")
        assert_table_foots(driver.page_source, table)
