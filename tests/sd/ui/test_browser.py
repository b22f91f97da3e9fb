"""The web UI in a real browser: Debian's headless Chromium driven by Playwright (no browser download: the
system Chromium's executable is used). Type keyframes, generate, wait for the GIF and count its frames; a bad
keyframe line shows the parser's message; the page works with every request off this machine blocked."""

import io
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
KEYFRAMES = (
    "0: a large red circle in the center on a blue background\n"
    "3: a large white heart in the center on a pink background"
)

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium before the tests (.ci/run)",
                    pytrace=False)  # fmt: skip
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); the browser test needs it",
                allow_module_level=True)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from sd.ui.app import launch

    out = tmp_path_factory.mktemp("ui")
    app, url = launch("127.0.0.1", free_port(), out, block=False)
    yield url, out
    app.close()


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    url, _ = server
    blocked: list[str] = []

    def only_this_machine(route):
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:  # the network is "closed": anything else is refused, and recorded
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=str(CHROMIUM), headless=True, args=ARGS,
            accept_downloads=True,
        )  # fmt: skip
        context.route("**/*", only_this_machine)
        page = context.new_page()
        page.goto(url)
        page.locator("#generate").wait_for(timeout=60_000)
        yield page, blocked
        context.close()


def set_number(page, elem_id: str, value: str) -> None:
    field = page.locator(f"#{elem_id} input[type=number]").first
    field.fill(value)
    field.press("Tab")


def test_generate_writes_a_gif_with_the_right_frame_count(server, browser):
    page, blocked = browser
    _, out = server
    page.locator("#keyframes textarea").fill(KEYFRAMES)
    page.locator("#keyframes-check").get_by_text("2 keyframes, 4 frames").wait_for(timeout=20_000)
    set_number(page, "steps", "4")
    page.locator("#generate").click()
    link = page.locator("#files a[href*='.gif']").first
    link.wait_for(timeout=180_000)
    response = page.request.get(link.get_attribute("href"))
    assert response.ok
    gif = Image.open(io.BytesIO(response.body()))
    assert gif.n_frames == 4 and gif.size == (64, 64)
    written = sorted(p.name for p in out.iterdir() if p.is_file())
    assert len(written) == 2 and written[0].endswith(".gif") and written[1].endswith(".gif.json")
    assert written[0].startswith("anim-") and "seed0" in written[0]  # named by time/seed/counter, not prompt
    assert not [p for p in out.iterdir() if ".partial" in p.name]
    page.locator("#status").get_by_text("4 frames").wait_for(timeout=10_000)
    assert blocked == []  # nothing was asked of the network


def test_send_a_frame_to_the_init_image(browser):
    page, _ = browser
    page.locator("#frames img").first.click()  # a thumbnail of the last run's frames
    page.locator("#send-frame").click()
    page.locator("#media").get_by_text("init image, audio, video").first.click()
    page.locator("#init-image img").first.wait_for(timeout=20_000)


def test_a_bad_keyframe_line_shows_the_parsers_message(browser):
    page, _ = browser
    page.locator("#keyframes textarea").fill("0: a red circle\n5 a blue square")
    message = page.locator("#keyframes-check")
    message.get_by_text("keyframes, line 2: missing ':'").wait_for(timeout=20_000)
    assert "expected 'FRAME: PROMPT'" in message.inner_text()


def test_inspire_me_fills_the_prompt_box_offline(browser):
    page, blocked = browser
    page.locator("#topics textarea, #topics input").first.fill("red star")
    page.locator("#inspire").click()
    page.locator("#keyframes-check").get_by_text("3 keyframes, 25 frames").wait_for(timeout=20_000)
    text = page.locator("#keyframes textarea").input_value()
    assert text.startswith("0: ") and "star" in text and "red" in text
    assert blocked == []


def test_stop_leaves_nothing_written(server, browser):
    page, _ = browser
    _, out = server

    def written() -> list[str]:
        return sorted(p.name for p in out.iterdir() if p.name != "cache")  # the frame cache is not output

    before = written()
    page.locator("#keyframes textarea").fill("0: a small green square in the top left on a white background\n"
                                             "99: a small green square in the top right on a white background")
    page.locator("#keyframes-check").get_by_text("2 keyframes, 100 frames").wait_for(timeout=20_000)
    set_number(page, "steps", "30")  # long enough that Stop always comes first
    page.locator("#generate").click()
    page.locator("#status").get_by_text(re.compile(r"frame \d+ of \d+")).wait_for(timeout=120_000)  # a pass of the run
    page.locator("#stop").click()
    page.locator("#status").get_by_text("stopped: nothing was written").wait_for(timeout=60_000)
    assert written() == before  # no new output, sidecar or partial file


def test_audio_onsets_and_video_defaults_fill_the_form(browser, tmp_path):
    import imageio.v2 as imageio
    import numpy as np

    from tests.sd.audio.clicks import clicks, write_wav

    page, blocked = browser
    song = write_wav(tmp_path / "clicks.wav", clicks([0.5, 1.0], duration=1.5))
    page.locator("#audio input[type=file]").set_input_files(str(song))
    set_number(page, "fps", "12")
    page.locator("#audio-keyframes").click()
    page.locator("#keyframes-check").get_by_text("4 keyframes, 18 frames").wait_for(timeout=60_000)
    frames = [line.split(":")[0] for line in page.locator("#keyframes textarea").input_value().splitlines()
              if line and not line.startswith("#")]  # fmt: skip
    assert frames[0] == "0" and frames[-1] == "17"  # 1.5 s at 12 fps
    assert all(abs(int(f) - e) <= 1 for f, e in zip(frames[1:3], [6, 12], strict=True))  # clicks at 0.5 s, 1 s

    clip = tmp_path / "clip.mp4"
    with imageio.get_writer(clip, format="FFMPEG", fps=10, macro_block_size=1, ffmpeg_log_level="error") as w:
        for n in range(7):
            w.append_data(np.full((64, 64, 3), 30 * n, dtype=np.uint8))
    page.locator("#video input[type=file]").set_input_files(str(clip))
    page.locator("#video-info").get_by_text("video: 7 frames at 10 fps").wait_for(timeout=60_000)
    assert page.locator("#fps input").first.input_value() == "10"
    page.locator("#keyframes-check").get_by_text("2 keyframes, 7 frames").wait_for(timeout=20_000)
    assert blocked == []
