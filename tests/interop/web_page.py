"""Drives a device's web page (/emulator/) in headless Chromium with Selenium, as a person would.

Usage: web_page.py HOST:PORT USER PASSWORD SCREENSHOT_DIR

Presses the call button and hangs that call up; prints READY and waits for an incoming SIP call
(the test starts it then); answers it, keys 1234 on the keypad and sends it, sees the DTMF event
in the live event log and the door output lit; hangs up. Screenshots: idle, ringing, active with
DTMF. Prints one JSON line with what it saw; exits non-zero when a step fails.
"""

import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

address, user, password, shots = sys.argv[1:5]
os.makedirs(shots, exist_ok=True)

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 20)


def click(xpath):
    """Clicks the element at `xpath` once it is there (the page redraws what changes)."""
    def clicked(_):
        try:
            driver.find_element(By.XPATH, xpath).click()
            return True
        except (ElementClickInterceptedException, NoSuchElementException, StaleElementReferenceException):
            return False
    wait.until(clicked)


def button(name, within=""):
    """The XPath of the button whose accessible name (its text) is `name`, under `within`."""
    return f"{within}//button[normalize-space()='{name}']"


def row(direction, state):
    """The XPath of the call row of `direction` in `state`."""
    return f"//tbody[@id='calls']/tr[@data-state='{state}'][td[2][normalize-space()='{direction}']]"


def present(xpath):
    return wait.until(ec.presence_of_element_located((By.XPATH, xpath)))


seen = {}
try:
    driver.get(f"http://{user}:{password}@{address}/emulator/")
    wait.until(ec.text_to_be_present_in_element((By.ID, "stream"), "live"))
    wait.until(ec.presence_of_element_located((By.XPATH, "//tbody[@id='ports']/tr[@data-port='1']")))
    driver.save_screenshot(os.path.join(shots, "idle.png"))

    click(button("Press call button"))
    seen["button_call"] = present(row("Outgoing", "Calling")).text
    click(button("Hang up", row("Outgoing", "Calling")))
    present(row("Outgoing", "Terminated"))

    print("READY", flush=True)
    present(row("Incoming", "Calling"))
    driver.save_screenshot(os.path.join(shots, "ringing.png"))
    click(button("Answer", row("Incoming", "Calling")))
    present(row("Incoming", "Active"))

    for digit in "1234":
        click(button(digit, "//div[@id='keypad']"))
    seen["digits"] = driver.find_element(By.ID, "digits").get_attribute("value")
    click(button("Send DTMF"))
    seen["dtmf_event"] = present("//ul[@id='events']/li[contains(@data-topic, 'Call/DTMF')]").text
    door = present("//tbody[@id='ports']/tr[@data-port='1'][@data-active='true']")
    seen["door"] = door.text
    seen["door_lit"] = "lit" in door.get_attribute("class")
    driver.save_screenshot(os.path.join(shots, "active-dtmf.png"))

    click(button("Hang up", row("Incoming", "Active")))
    present(row("Incoming", "Terminated"))
    seen["ok"] = True
except Exception as e:  # report what was seen so far, and the page
    seen["error"] = f"{type(e).__name__}: {e}"
    seen["page"] = driver.find_element(By.TAG_NAME, "main").text
    driver.save_screenshot(os.path.join(shots, "failure.png"))
finally:
    driver.quit()
print(json.dumps(seen), flush=True)
sys.exit(0 if seen.get("ok") else 1)
