"""The browser tests' tab: a Page that waits on what the next page alone shows, and the accounts."""

from __future__ import annotations

import re

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

PASSWORDS = {"otto": "operator-pass", "vera": "viewer-pass"}


class Page:
    """A browser tab, and waits on what the next page alone shows.

    A click that loads a new page names what only that page has (``shows``, a CSS selector, or
    ``url``, a part of its address) and waits for it. It never waits for the old page to go stale:
    polling an element of a document that is being replaced races chromedriver's node lookup
    (``unknown error: unhandled inspector error: Node with given id does not belong to the
    document``), and a stale old page says nothing about whether the new one is there yet.
    The overview's live region is replaced every few seconds, so what is read from it is read in
    one script, and what is clicked in it is found again if a refresh replaced it meanwhile.
    """

    TIMEOUT = 30  # a condition, not a sleep: generous for a loaded machine, instant otherwise

    def __init__(self, driver, base: str, folder):
        self.d, self.base, self.folder = driver, base, folder

    def wait(self, condition, what: str):
        return WebDriverWait(self.d, self.TIMEOUT, ignored_exceptions=(StaleElementReferenceException,)).until(
            condition, message=f"waiting for {what} (at {self.d.current_url})")

    def open(self, path: str) -> None:
        self.d.get(self.base + path)
        self.wait_ready()

    def wait_ready(self) -> None:
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete", "the page to load")

    def wait_for(self, css: str):
        return self.wait(EC.presence_of_element_located((By.CSS_SELECTOR, css)), css)

    def find(self, css: str):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def attributes(self, css: str, name: str) -> list[str]:
        """An attribute of every element matching css, read in one script (live regions change)."""
        return self.d.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.getAttribute(arguments[1]))",
            css, name)

    def _navigate_by(self, locate, *, shows: str | None, url: str | None) -> None:
        assert shows or url, "say what the new page alone shows"
        # What we wait for must not be on the old page already, or the wait proves nothing.
        assert not (shows and self.all(shows)), f"{shows!r} is on the page before the click"
        assert not (url and url in self.d.current_url), f"{url!r} is in the address before the click"
        self._click_fresh(locate)

        def arrived(d) -> bool:
            if url and url not in d.current_url:
                return False
            if shows and not d.find_elements(By.CSS_SELECTOR, shows):
                return False
            return d.execute_script("return document.readyState") == "complete"

        self.wait(arrived, f"the new page ({shows or ''} {url or ''})")

    def click(self, css: str, *, shows: str | None = None, url: str | None = None) -> None:
        """Click something that loads a new page, and wait for what that page alone shows."""
        self._navigate_by(lambda: self.find(css), shows=shows, url=url)

    def tick(self, css: str) -> None:
        """Click something that stays on the page (a checkbox)."""
        self._click_fresh(lambda: self.find(css))

    @staticmethod
    def _click_fresh(locate) -> None:
        for attempt in range(3):
            try:
                return locate().click()
            except StaleElementReferenceException:  # a live refresh replaced it: find it again
                if attempt == 2:
                    raise

    def click_link(self, text: str, *, shows: str | None = None, url: str | None = None) -> None:
        self._navigate_by(lambda: self.d.find_element(By.PARTIAL_LINK_TEXT, text), shows=shows, url=url)

    def text(self) -> str:
        return re.sub(r"\s+", " ", self.find("body").text)

    def login(self, name: str) -> None:
        self.d.delete_all_cookies()
        self.open("/accounts/login/")
        self.find("#id_username").send_keys(name)
        self.find("#id_password").send_keys(PASSWORDS[name])
        self.click("button[type=submit]", shows=".topbar .who")
        assert "Sign out" in self.text(), self.text()

    def shot(self, name: str) -> None:
        # Full-page screenshot: grow the window to the page's height first.
        height = self.d.execute_script("return document.documentElement.scrollHeight")
        self.d.set_window_size(1440, max(800, min(height, 6000)))
        self.d.save_screenshot(str(self.folder / f"{name}.png"))
        self.d.set_window_size(1440, 1000)
