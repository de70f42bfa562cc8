"""The web demo's page in a real browser: Debian's Chromium, headless, driven by Selenium through chromium-driver.
Upload a person and a garment, run, and the result the page shows is the very PNG the command line writes for
the pair; a bad upload shows one clear message where the result would be; the gallery and "Try every garment"
work; and no request of the page leaves localhost (Chromium's performance log). Skipped where Chromium,
chromium-driver, Selenium or the [web] extra are missing, unless TRYON_REQUIRE_WEB=1 (CI's newest-OpenCV venv,
where .ci/run installs them). TRYON_SCREENSHOT=PATH keeps the screenshot of the result (docs/web_demo.png).
A file over --max-bytes is refused by Gradio before it is sent (its own message, at the top of the page)."""
import json
import os
import shutil
import time
import urllib.parse
import urllib.request

import cv2 as cv
import numpy as np
import pytest

from conftest import VITON_CLOTHES, VITON_PERSONS
from test_web import MAX_BYTES, MAX_PIXELS, cli_result
from web_support import Server, png_bomb, web_missing

CHROMIUM, CHROMEDRIVER = '/usr/bin/chromium', '/usr/bin/chromedriver'


def missing():
    try:
        import selenium  # noqa: F401
    except ImportError:
        return 'Selenium is not installed: pip install -e ".[web-test]"'
    for path, package in ((CHROMIUM, 'chromium'), (CHROMEDRIVER, 'chromium-driver')):
        if not os.access(path, os.X_OK):
            return '%s is missing: apt-get install chromium chromium-driver (Debian package %s)' % (path, package)
    return web_missing()


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    reason = missing()
    if reason:
        if os.environ.get('TRYON_REQUIRE_WEB') == '1':
            pytest.fail('TRYON_REQUIRE_WEB=1 but %s' % reason)
        pytest.skip(reason)
    garments = tmp_path_factory.mktemp('browser_garments')
    for path in VITON_CLOTHES[:3]:
        shutil.copy(path, garments / os.path.basename(path))
    log = tmp_path_factory.mktemp('browser_log') / 'server.log'
    running = Server(['--garments', str(garments), '--max-pixels', str(MAX_PIXELS), '--max-bytes', str(MAX_BYTES),
                      '--workers', '1'], str(log))
    yield running
    running.stop()


@pytest.fixture(scope='module')
def browser(server):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                     '--window-size=1400,1000', '--no-first-run', '--disable-background-networking',
                     '--disable-component-update', '--disable-sync', '--disable-default-apps'):
        options.add_argument(argument)
    options.set_capability('goog:loggingPrefs', {'performance': 'ALL'})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


def wait(driver, condition, seconds=90):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, seconds, poll_frequency=0.2).until(condition)


def open_page(driver, server):
    from selenium.webdriver.common.by import By
    driver.get(server.url + '/')
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '#person input[type=file]')
         and d.find_elements(By.CSS_SELECTOR, '#garment input[type=file]'))


def upload(driver, component, path):
    from selenium.webdriver.common.by import By
    driver.find_element(By.CSS_SELECTOR, '#%s input[type=file]' % component).send_keys(path)
    # the page shows the upload once the server has it
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '#%s img' % component))


def message_text(driver):
    """The page's message, or None while an event is running (Gradio's status tracker over it is shown)."""
    from selenium.webdriver.common.by import By
    tracker = driver.find_elements(By.CSS_SELECTOR, '#message [data-testid=status-tracker]')
    if tracker and 'hide' not in tracker[0].get_attribute('class').split():
        return None
    shown = driver.find_elements(By.CSS_SELECTOR, '#message [data-testid=markdown]')
    return shown[0].text.strip() if shown else ''


def run_and_wait(driver, button='run'):
    """Click a button; the message the page then shows (each differs from the one before in these tests)."""
    from selenium.webdriver.common.by import By
    before = wait(driver, lambda d: message_text(d) is not None and [message_text(d)])[0]
    driver.find_element(By.ID, button).click()
    return wait(driver, lambda d: message_text(d) not in (None, before) and message_text(d))


def result_bytes(driver):
    """The bytes of the "after" image of the slider, fetched from the address the page shows it from."""
    from selenium.webdriver.common.by import By
    images = wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, '#result img')) == 2
                  and d.find_elements(By.CSS_SELECTOR, '#result img'))
    with urllib.request.urlopen(images[1].get_attribute('src'), timeout=60) as response:
        return response.read()


def test_page_shows_the_cli_result_and_clear_messages(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    person, cloth = VITON_PERSONS[0], VITON_CLOTHES[0]
    expected = cli_result(tmp_path, person, cloth)
    open_page(browser, server)
    upload(browser, 'person', person)
    upload(browser, 'garment', cloth)
    message = run_and_wait(browser)
    assert message.startswith('Done'), message
    assert result_bytes(browser) == expected
    assert browser.find_element(By.ID, 'download').is_displayed()
    time.sleep(1)  # the slider's images finish drawing
    screenshot = os.environ.get('TRYON_SCREENSHOT') or str(tmp_path / 'web_demo.png')
    assert browser.save_screenshot(screenshot)

    # bad uploads: a message where the result would be, never a traceback, and the server goes on
    bomb = tmp_path / 'bomb.png'
    bomb.write_bytes(png_bomb(2500, 2000))   # 5 MP of zeros in a few kB; the server takes 4 MP
    upload(browser, 'person', str(bomb))
    message = run_and_wait(browser)
    assert message.startswith('error:') and 'more pixels than the 4.0 MP' in message, message
    text = tmp_path / 'notes.png'
    text.write_bytes(b'not an image\n' * 20)
    browser.find_element(By.CSS_SELECTOR, '#person input[type=file]').send_keys(str(text))
    time.sleep(1)
    message = run_and_wait(browser)
    assert message.startswith('error:') and ('not an image' in message or 'no person photo' in message), message
    upload(browser, 'person', VITON_CLOTHES[1])   # a garment photo: no person in it
    message = run_and_wait(browser)
    assert message.startswith('error:') and 'no person found' in message, message
    plain = tmp_path / 'plain.png'
    plain.write_bytes(cv.imencode('.png', np.full((256, 192, 3), 200, np.uint8))[1].tobytes())
    upload(browser, 'person', person)
    upload(browser, 'garment', str(plain))        # a plain picture: no garment in it
    message = run_and_wait(browser)
    assert message.startswith('error:') and 'no garment found' in message, message
    assert 'Traceback' not in browser.page_source and 'Traceback' not in server.text()
    assert server.health()['status'] == 'ok'


def test_gallery_and_every_garment(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    open_page(browser, server)
    # a file over --max-bytes: Gradio refuses the upload itself, with a message, and the person stays empty
    big = tmp_path / 'big.png'
    big.write_bytes(b'\x89PNG\r\n\x1a\n' + bytes(MAX_BYTES + 1000))
    browser.find_element(By.CSS_SELECTOR, '#person input[type=file]').send_keys(str(big))
    wait(browser, lambda d: 'exceed the maximum allowed size' in d.find_element(By.TAG_NAME, 'body').text)
    message = run_and_wait(browser)
    assert message.startswith('error:') and 'no person photo' in message, message
    upload(browser, 'person', VITON_PERSONS[1])
    message = run_and_wait(browser)
    assert message.startswith('error:') and 'no garment' in message, message
    # a click in the gallery makes that garment the one to try on
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#garments button.thumbnail-item'))[1].click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#garment img'))
    message = run_and_wait(browser)
    assert message.startswith('Done'), message
    assert result_bytes(browser) == cli_result(tmp_path, VITON_PERSONS[1], VITON_CLOTHES[1])
    message = run_and_wait(browser, 'run-all')
    wait(browser, lambda d: message_text(d) == 'Tried 3 of 3 garments')
    assert len(browser.find_elements(By.CSS_SELECTOR, '#every img')) == 3


def test_no_request_leaves_localhost(server, browser):
    """Every address the page asked for (Chromium's performance log, kept since the browser started) is the
    server's own, or data:/blob: in the page: no CDN, no fonts, no analytics."""
    open_page(browser, server)
    time.sleep(2)
    urls = set()
    for entry in browser.get_log('performance'):
        message = json.loads(entry['message'])['message']
        if message['method'] == 'Network.requestWillBeSent':
            urls.add(message['params']['request']['url'])
    assert len(urls) > 10, urls
    outside = [url for url in urls if urllib.parse.urlsplit(url).scheme not in ('data', 'blob')
               and urllib.parse.urlsplit(url).hostname not in ('127.0.0.1', 'localhost')]
    assert not outside, outside
