"""The screenshots in the docs: the web explorer and the run report of a finished run, taken in
Debian's headless chromium (apt-get install chromium chromium-driver; pip install selenium).

    python tools/docs_screenshots.py runs/00000-demo [--out docs/img]

Writes explorer.png (seed 7, the first direction moved, psi 0.8) and report.png (the report's
first screen and a half).
"""

import argparse
import shutil
import time
from pathlib import Path


def chromium(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))


def settle(driver) -> None:
    for _ in range(300):
        if driver.execute_script("return document.body.dataset.state") == "ready":
            return
        time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--out", default="docs/img")
    args = ap.parse_args()
    from ganforge.serve.app import ExplorerServer

    out = Path(args.out)
    server = ExplorerServer(args.run, port=0).start()
    driver = chromium(1100, 640)
    try:
        driver.get(server.url)
        settle(driver)
        seed = driver.find_element("id", "seed")
        seed.clear()
        seed.send_keys("7")
        for element, value in (("d0", 1.5), ("psi", 0.8)):
            driver.execute_script("const e = document.getElementById(arguments[0]); e.value = arguments[1];"
                                  "e.dispatchEvent(new Event('input'))", element, value)
        settle(driver)
        driver.save_screenshot(str(out / "explorer.png"))
        driver.set_window_size(1280, 1500)
        driver.get(server.url + "run/report/report.html")
        time.sleep(1)
        driver.save_screenshot(str(out / "report.png"))
    finally:
        driver.quit()
        server.stop()
    print(out / "explorer.png", out / "report.png")


if __name__ == "__main__":
    main()
