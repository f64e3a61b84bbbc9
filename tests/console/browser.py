"""The console in a real browser: headless Chromium (Debian's chromium and chromium-driver)
driven by Selenium, against `mftg console` over a data directory a real exchange filled. Run by
crates/cli/tests/console_browser.rs, which sets up the exchange and checks the outcome on disk.

Usage: browser.py URL TOKEN SCREENSHOT_DIR FACTS.json
FACTS: {"failed": id, "delivered": id, "html_name": file name, "expired_partner": AS2 ID}
Prints one JSON line of what it saw; exits non-zero (with why) when a check fails.
"""
import json
import pathlib
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

URL, TOKEN, SHOTS, FACTS = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3]), json.loads(pathlib.Path(sys.argv[4]).read_text())
SHOTS.mkdir(parents=True, exist_ok=True)
seen = {}


def check(ok, why):
    if not ok:
        sys.exit(f"browser: {why}")


def no_alert(driver, where):
    try:
        text = driver.switch_to.alert.text
    except NoAlertPresentException:
        return
    sys.exit(f"browser: a script ran on {where}: alert {text!r}")


def shot(driver, name):
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def until(driver, what, condition):
    """Waits (bounded) for a page the last click asked for: a click returns before it loads."""
    try:
        return WebDriverWait(driver, 20).until(condition)
    except Exception:
        sys.exit(f"browser: {what} never came ({driver.current_url})")


def present(css):
    return lambda d: d.find_elements(By.CSS_SELECTOR, css)


def rows(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#messages tbody tr")


options = Options()
options.binary_location = "/usr/bin/chromium"
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
driver.set_page_load_timeout(30)
try:
    # No page without the token: every page leads to the login form, and shows nothing else.
    for path in ("/", "/messages", f"/messages/{FACTS['delivered']}", "/partners", "/queue"):
        driver.get(URL + path)
        check("/login" in driver.current_url, f"{path} loaded without the token ({driver.current_url})")
        # (the path asked for comes back in the form, to return to after logging in)
        check("po-good.x12" not in driver.page_source and "BETA" not in driver.page_source,
              f"{path}: the login page shows the gateway's data")
    driver.get(URL + "/")
    shot(driver, "login")
    driver.find_element(By.NAME, "token").send_keys("not-the-token-at-all")
    driver.find_element(By.CSS_SELECTOR, "#login button").click()
    until(driver, "the refusal of a wrong token", present("#error"))
    check("not the console's token" in driver.find_element(By.ID, "error").text, "a wrong token was not refused")
    driver.find_element(By.NAME, "token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "#login button").click()
    until(driver, "the dashboard", present("#counts"))

    # Dashboard: the chart, the counts by status, the failure of the last day, the expired cert.
    check(driver.current_url.rstrip("/") == URL, f"the login led to {driver.current_url}")
    bars = driver.find_elements(By.CSS_SELECTOR, "#chart rect.bar")
    check(len(bars) > 0, "the chart has no bars")
    drawn = sum(int(b.get_attribute("data-count")) for b in bars)
    counts = {li.get_attribute("data-status"): int(li.find_element(By.TAG_NAME, "b").text)
              for li in driver.find_elements(By.CSS_SELECTOR, "#counts li[data-status]")}
    seen["dashboard"] = {"bars": len(bars), "drawn": drawn, "counts": counts}
    check(counts.get("delivered", 0) >= 2, f"counts: {counts}")
    check(drawn == sum(counts.values()), f"the chart shows {drawn} messages, the counts {counts}")
    check(FACTS["expired_partner"] in driver.find_element(By.ID, "expiring").text, "the expired certificate is not on the dashboard")
    check(len(driver.find_elements(By.CSS_SELECTOR, "#expiring .cert-expired")) >= 1, "the expired certificate is not marked")
    no_alert(driver, "the dashboard")
    shot(driver, "dashboard")

    # Messages: every one, then filtered by status and by partner; the HTML file name as text.
    driver.get(URL + "/messages")
    total = len(rows(driver))
    check(total == sum(counts.values()), f"{total} rows for {counts}")
    cells = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#messages td.file")]
    check(FACTS["html_name"] in cells, f"the file name {FACTS['html_name']!r} is not shown as text: {cells}")
    check(not driver.find_elements(By.CSS_SELECTOR, "#messages td img"), "a file name became an element")
    no_alert(driver, "the messages page")
    Select(driver.find_element(By.NAME, "status")).select_by_visible_text("failed")
    driver.find_element(By.CSS_SELECTOR, "#filters button").click()
    until(driver, "the failed messages", lambda d: "status=failed" in d.current_url)
    failed_rows = rows(driver)
    check([r.get_attribute("data-id") for r in failed_rows] == [FACTS["failed"]],
          f"status=failed shows {[r.get_attribute('data-id') for r in failed_rows]}")
    shot(driver, "messages-failed")
    driver.get(URL + "/messages")
    Select(driver.find_element(By.NAME, "status")).select_by_visible_text("delivered")
    driver.find_element(By.NAME, "partner").send_keys("BETA")
    driver.find_element(By.CSS_SELECTOR, "#filters button").click()
    until(driver, "BETA's delivered messages", lambda d: "partner=BETA" in d.current_url)
    delivered_rows = rows(driver)
    check(0 < len(delivered_rows) < total, f"status=delivered&partner=BETA shows {len(delivered_rows)} of {total}")
    check(all(r.find_element(By.CSS_SELECTOR, ".badge").text == "delivered" for r in delivered_rows), "a row is not delivered")
    # Sorting by file name, both ways.
    header = driver.find_elements(By.CSS_SELECTOR, "#messages th")[5]
    header.click()
    names = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#messages td.file")]
    check(names == sorted(names, key=str.lower) or names == sorted(names), f"not sorted: {names}")
    header.click()
    again = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#messages td.file")]
    check(again == list(reversed(names)), f"not sorted the other way: {again}")
    shot(driver, "messages")
    # A filter value that is not a status: the page says what is taken.
    driver.get(URL + "/messages?status=lost")
    check("delivered-with-warning" in driver.page_source and "lost" in driver.find_element(By.ID, "error").text,
          "a bad status is not explained")

    # Detail: the timeline and the receipt.
    driver.get(URL + f"/messages/{FACTS['delivered']}")
    steps = driver.find_elements(By.CSS_SELECTOR, "#timeline li")
    check(len(steps) >= 3, f"the timeline has {len(steps)} steps")
    receipt = driver.find_element(By.ID, "receipt").text
    check("processed" in receipt and "verified" in receipt, f"receipt: {receipt}")
    check(len(driver.find_elements(By.CSS_SELECTOR, "#downloads a")) == 4, "not every file can be downloaded")
    shot(driver, "message")
    seen["timeline"] = [s.text for s in steps]

    # Resend the failed message, confirmed twice (the box, then the dialog): delivered.
    driver.get(URL + f"/messages/{FACTS['failed']}")
    check(driver.find_element(By.ID, "status").text == "failed", "the failed message is not failed")
    driver.find_element(By.NAME, "confirm").click()
    driver.find_element(By.CSS_SELECTOR, "#resend button").click()
    alert = driver.switch_to.alert
    check("again" in alert.text, f"confirmation: {alert.text}")
    alert.accept()
    until(driver, "the notice of the resend", present("#notice"))
    check("Queued to be sent again" in driver.find_element(By.ID, "notice").text, "no notice after the resend")
    deadline = time.monotonic() + 60
    while driver.find_element(By.ID, "status").text != "delivered":
        check(time.monotonic() < deadline, f"the resent message is {driver.find_element(By.ID, 'status').text}")
        time.sleep(0.5)
        driver.get(URL + f"/messages/{FACTS['failed']}")
    shot(driver, "resent")

    # Partners: the expired certificate marked, the good ones valid.
    driver.get(URL + "/partners")
    expired = driver.find_element(By.CSS_SELECTOR, f"#partners tr[data-partner='{FACTS['expired_partner']}']")
    check(expired.find_elements(By.CSS_SELECTOR, ".cert-expired"), "the expired certificate is not marked")
    beta = driver.find_element(By.CSS_SELECTOR, "#partners tr[data-partner='BETA']")
    check(beta.find_elements(By.CSS_SELECTOR, ".cert-valid"), "BETA's certificate is not valid")
    shot(driver, "partners")

    # Edit BETA's partnership with its form: the change is saved and shown; a value the gateway
    # would not start with (a certificate not in trust.jks) is refused with why, nothing saved.
    beta.find_element(By.CSS_SELECTOR, "a.edit").click()
    until(driver, "the partnership's form", present("#settings"))
    timeout = driver.find_element(By.ID, "f-timeout_secs")
    timeout.clear()
    timeout.send_keys("11")
    shot(driver, "partner-edit")
    driver.find_element(By.ID, "save").click()
    until(driver, "the saved notice", present("#notice"))
    check("saved in" in driver.find_element(By.ID, "notice").text, "no note of where it was saved")
    driver.get(URL + "/partners/edit?station=ALPHA&partner=BETA")
    check(driver.find_element(By.ID, "f-timeout_secs").get_attribute("value") == "11", "the timeout was not saved")
    alias = driver.find_element(By.ID, "f-certificate_alias")
    alias.clear()
    alias.send_keys("nobody")
    driver.find_element(By.ID, "save").click()
    until(driver, "the refusal", present("#error"))
    check("nobody" in driver.find_element(By.ID, "error").text, "the refusal does not say why")
    shot(driver, "partner-refused")
    driver.get(URL + "/partners/edit?station=ALPHA&partner=BETA")
    check(driver.find_element(By.ID, "f-certificate_alias").get_attribute("value") == "beta", "a refused change was saved")

    driver.get(URL + "/queue")
    shot(driver, "queue")

    # Out: the pages are gone again.
    driver.find_element(By.CSS_SELECTOR, "header form button").click()
    until(driver, "the login page after logging out", present("#login"))
    driver.get(URL + "/messages")
    check("/login" in driver.current_url, "still logged in after logging out")
    print(json.dumps(seen))
finally:
    driver.quit()
