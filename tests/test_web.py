"""The /web playground in a real headless Chromium: a person plays a ticket by
clicking and typing, and the page shows the reward and grade the episode gives.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them). Without
them the test skips on a developer machine and fails in CI (CI=true).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from support_env.environment import SupportEnvironment
from support_env.models import SupportAction
from support_env.agents.reference import ReferencePolicy


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
TASK = "medium_kb_reply"


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        message = "needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1400,1250", f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


class Page:
    """The helpdesk tab, driven the way a person would."""

    def __init__(self, driver, url: str):
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.wait = WebDriverWait(driver, 30)
        driver.get(f"{url}/web/")
        self.wait.until(lambda d: d.find_elements("id", "start") and d.find_element("id", "start").is_displayed())

    def text(self, element_id: str) -> str:
        found = self.driver.find_elements("id", element_id)
        return found[0].text if found else ""

    def click(self, element_id: str) -> None:
        self.driver.find_element("id", element_id).click()

    def type(self, element_id: str, text: str) -> None:
        box = self.driver.find_element("css selector", f"#{element_id} textarea")
        box.clear()
        box.send_keys(text)  # Enter makes a new line in a multi-line box

    def start(self, task_id: str) -> None:
        self.driver.find_element("css selector", f"#task input[value='{task_id}']").click()
        self.click("start")
        self.wait.until(lambda d: "Episode started" in self.text("status") and task_id in self.text("status"))

    def act(self, action: SupportAction, step: int) -> None:
        kind = action.action_type
        if kind == "classify_ticket":
            self.click(f"classify-{action.category}")
        elif kind == "search_kb":
            self.type("kb-query", action.query)
            self.click("search")
        elif kind == "reply_ticket":
            self.type("reply-text", action.reply_text)
            self.click("reply")
        elif kind == "close_ticket":
            self.click("close")
        else:
            raise AssertionError(f"{kind} is not used on {TASK}")
        self.wait.until(lambda d: f"step {step}:" in self.text("step-result"))


def test_playground_plays_a_queue_by_clicking_and_shows_rewards_and_grade(start_server, browser, tmp_path):
    live = start_server(ENABLE_WEB_INTERFACE="true", GRADIO_ANALYTICS_ENABLED="False")
    page = Page(browser, live.url)
    page.start(TASK)

    # The same episode in process: the page must show exactly its rewards.
    local, policy = SupportEnvironment(), ReferencePolicy()
    observation = local.reset(task_id=TASK)
    first_ticket = observation.current_ticket
    assert page.text("ticket-id") == first_ticket.id
    assert first_ticket.customer.name in page.text("ticket") and first_ticket.customer.plan in page.text("ticket")
    step = 0
    while not observation.done:
        action = policy.act(observation)
        if action.action_type == "search_kb":  # a person searches with the subject line
            action = action.model_copy(update={"query": observation.current_ticket.subject})
        observation = local.step(action)
        step += 1
        page.act(action, step)
        assert page.text("step-reward") == f"{observation.reward:+.2f}", (step, action)
        shot = tmp_path / "playground-first-reply.png"
        if action.action_type == "reply_ticket" and not shot.exists():  # the first ticket as the README shows it
            assert all(r.article_id in page.text("kb-results") for r in observation.kb_search_results)
            browser.execute_script("window.scrollTo(0, 0)")
            browser.save_screenshot(str(shot))
            if os.environ.get("PLAYGROUND_SCREENSHOT"):  # to refresh docs/playground.png
                shutil.copy(shot, os.environ["PLAYGROUND_SCREENSHOT"])

    assert page.text("grade-score") == f"{observation.grade.score:.2f}"
    rows = page.text("grade-tickets")
    assert all(t.ticket_id in rows for t in observation.grade.tickets)
    assert "Episode over" in page.text("status") and "queue is done" in page.text("ticket")
    browser.save_screenshot(str(tmp_path / "playground-graded.png"))
    assert Path(tmp_path / "playground-graded.png").stat().st_size > 10_000
