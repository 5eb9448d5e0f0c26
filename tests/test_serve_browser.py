"""srkit serve end to end in a real browser: headless Chromium driven by Selenium uploads an
image, picks two models, waits for both results and checks the pixels, the figures, the
synchronized zoom and the slider; then a bad upload. Skipped, saying why, where Selenium or
the system's Chromium and chromedriver are absent (`.ci/run` installs them when it can).

``SRKIT_SCREENSHOT=docs/img/serve.png`` also saves the screenshot there (`make screenshot`).
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette", reason="srkit serve needs the app extra: pip install 'srkit[app]'")
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="the browser test needs Selenium: pip install 'srkit[browser]'"
)

from srkit.image.io import read_image  # noqa: E402
from test_serve import BUTTERFLY, ServerProcess, reference  # noqa: E402

pytestmark = pytest.mark.slow
MODELS = ("repan_x4", "espcn_x4")


def browser_paths() -> tuple[str, str]:
    chromium = os.environ.get("SRKIT_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None
    )
    driver = os.environ.get("SRKIT_CHROMEDRIVER") or shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip(
            "no Chromium/chromedriver on this machine (apt-get install chromium chromium-driver; "
            "or set SRKIT_CHROMIUM and SRKIT_CHROMEDRIVER)"
        )
    return chromium, driver


@pytest.fixture
def browser(tmp_path: Path):
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = browser_paths()
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download anything
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1800",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def test_page_compares_two_models(tmp_path: Path, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    server = ServerProcess(tmp_path / "server")
    try:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 240, poll_frequency=0.2)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#models input"))
        browser.find_element(By.CSS_SELECTOR, "input[name=mode][value=degrade]").click()
        Select(browser.find_element(By.ID, "scale")).select_by_value("4")
        for box in browser.find_elements(By.CSS_SELECTOR, "#models input"):
            if box.is_selected() != (box.get_attribute("value") in MODELS):
                box.click()
        browser.find_element(By.ID, "image").send_keys(str(BUTTERFLY))
        browser.find_element(By.ID, "run").click()
        loaded = (
            "const imgs = [...document.querySelectorAll('#results img')];"
            "return imgs.length === 4 && imgs.every(i => i.complete && i.naturalWidth > 0);"
        )
        wait.until(lambda d: d.execute_script(loaded))
        assert browser.find_element(By.ID, "message").text == ""
        cards = {
            c.get_attribute("data-name"): c for c in browser.find_elements(By.CLASS_NAME, "card")
        }
        assert set(MODELS) <= set(cards) and "HR" in cards
        for name in MODELS:
            sr, psnr, ssim = reference(name)
            card = cards[name]
            figures = card.find_element(By.CLASS_NAME, "figures")
            assert f"PSNR {psnr:.2f} dB" in figures.text and f"SSIM {ssim:.4f}" in figures.text
            assert float(figures.get_attribute("data-psnr")) == pytest.approx(psnr, abs=1e-4)
            img = card.find_element(By.TAG_NAME, "img")
            assert browser.execute_script("return arguments[0].naturalWidth", img) == 256
            with urllib.request.urlopen(img.get_attribute("src")) as response:
                assert np.array_equal(read_image(response.read()).pixels, sr)
            link = card.find_element(By.CLASS_NAME, "download")
            assert link.get_attribute("download") == f"butterfly_x4_{name}.png"
        # the slider compares the LR input with the first model; zooming one view zooms all
        clip = browser.execute_script(
            "return document.getElementById('compare-right').style.clipPath"
        )
        assert clip.startswith("inset(0px 0px 0px 50")  # split in the middle of the image
        view = cards[MODELS[0]].find_element(By.CLASS_NAME, "view")
        zoom_in = (
            "const v = arguments[0], r = v.getBoundingClientRect();"
            "for (let k = 0; k < 3; k++) v.dispatchEvent(new WheelEvent('wheel', {deltaY: -100,"
            " clientX: r.left + r.width * 0.62, clientY: r.top + r.height * 0.45,"
            " bubbles: true, cancelable: true}));"
        )
        browser.execute_script(zoom_in, view)
        zooms = {v.get_attribute("data-zoom") for v in browser.find_elements(By.CLASS_NAME, "view")}
        assert zooms == {f"{1.25**3:.4f}"}
        layers = [
            cards[n].find_element(By.CLASS_NAME, "layer").get_attribute("style") for n in MODELS
        ]
        assert layers[0] == layers[1] and "scale(" in layers[0]
        shot = tmp_path / "serve.png"
        browser.save_screenshot(str(shot))
        assert read_image(shot).width > 1000
        target = os.environ.get("SRKIT_SCREENSHOT")
        if target:
            shutil.copyfile(shot, target)
        # a file that is not an image: a message on the page, the server carries on
        notes = tmp_path / "notes.txt"
        notes.write_text("not a picture")
        browser.find_element(By.CSS_SELECTOR, "input[name=mode][value=upscale]").click()
        browser.find_element(By.ID, "image").send_keys(str(notes))
        browser.find_element(By.ID, "run").click()
        wait.until(lambda d: d.find_element(By.ID, "message").text)
        message = browser.find_element(By.ID, "message").text
        assert message == "notes.txt: not an image file (unrecognised format)"
    finally:
        output = server.stop()
    assert "Traceback" not in output
    assert list(server.tmp.iterdir()) == [] and list(server.cwd.iterdir()) == []
