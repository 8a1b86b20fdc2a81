"""Opens an export bundle's report.html in Debian's headless Chromium, driven over WebDriver
(selenium pointed at /usr/bin/chromedriver; nothing is downloaded), with networking off: a
proxy on a closed loopback port, every host name unresolvable, and DevTools' offline mode.
Records every request the page makes, reads what it renders, prints it to PDF (does it
print?) and saves a full-page screenshot.

Usage: report_check.py REPORT_HTML SCREENSHOT_PNG
Prints one JSON object: {"title", "scope", "questions", "alert_rows", "controls", "requests",
"scripts", "external", "pdf_bytes", "height"}.
"""

import base64
import json
import os
import sys
import tempfile

os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager fetch anything

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main(report, screenshot):
    profile = tempfile.mkdtemp(prefix="report-check-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
        )
        url = "file://" + os.path.abspath(report)
        driver.get_log("performance")  # drop the browser's own start page's requests
        driver.get(url)
        js = driver.execute_script
        result = {
            "title": driver.title,
            "scope": js("return document.getElementById('scope').innerText"),
            "questions": js("return [...document.querySelectorAll('section.answer h3')].map(h => h.innerText)"),
            "alert_rows": js("return document.querySelectorAll('#alert-table tbody tr').length"),
            "alert_ids": js("return [...document.querySelectorAll('#alert-table tbody tr td:first-child')].map(td => td.innerText)"),
            "controls": js("return [...document.querySelectorAll('#controls + table tbody tr td:nth-child(2)')].map(td => td.innerText)"),
            "scripts": js("return document.scripts.length"),
            "external": js(
                "return [...document.querySelectorAll('[src],[href],link')]"
                ".map(e => e.getAttribute('src') || e.getAttribute('href') || '')"
                ".filter(u => !u.startsWith('#'))"
            ),
            "height": js("return document.documentElement.scrollHeight"),
        }
        pdf = driver.execute_cdp_cmd("Page.printToPDF", {"printBackground": False})
        result["pdf_bytes"] = len(base64.b64decode(pdf["data"]))
        result["pdf_magic"] = base64.b64decode(pdf["data"])[:5].decode("latin-1")
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        with open(screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        requests = []
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                requests.append(message["params"]["request"]["url"])
        result["requests"] = requests
        result["url"] = url
        print(json.dumps(result))
    finally:
        driver.quit()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
