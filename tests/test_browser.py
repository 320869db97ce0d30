"""A real browser (Debian's headless Chromium driven by Playwright) uses the tabs."""
import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "artifacts"  # git-ignored; CI keeps the screenshots here
# Chromium as root in a container: no sandbox; no background networking (this machine has no network).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def app_url():
    for name in ("translation", "detection", "style-starry_night", "style-the_scream", "sentiment", "sentiment-bwd", "sentiment-lm",
                 "darknet-cifar10", "devise"):
        if not (REPO_ROOT / "weights" / name / "model.safetensors").exists():
            pytest.fail(f"the bundled weights weights/{name} are missing")
    import app as app_module

    demo = app_module.build_app()
    _, url, _ = app_module.serve(demo, prevent_thread_lock=True, quiet=True)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def page():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


def _open_tab(page, app_url, tab_id: str) -> None:
    page.goto(app_url)
    page.locator(f"#tab-{tab_id}-button").click()


def test_translate_in_the_browser_shows_translation_and_heat_map(app_url, page):
    from playwright.sync_api import expect

    _open_tab(page, app_url, "translation")
    page.locator("#translation-input textarea").fill("Je ne sais pas pourquoi il est parti.")
    page.locator("#translation-button").click()
    greedy = page.locator("#translation-greedy textarea")
    expect(greedy).not_to_have_value("", timeout=60_000)
    assert "know" in greedy.input_value().lower()
    expect(page.locator("#translation-attention img")).to_be_visible(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "translation-tab.png"), full_page=True)


def test_bad_input_in_the_browser_shows_a_message_not_an_error(app_url, page):
    from playwright.sync_api import expect

    _open_tab(page, app_url, "translation")
    page.locator("#translation-input textarea").fill("   ")
    page.locator("#translation-button").click()
    expect(page.locator("#translation-notes")).to_contain_text("Type a French sentence", timeout=30_000)
    assert page.locator(".toast-body.error").count() == 0


def test_sentiment_classifies_a_review_and_continues_it(app_url, page):
    from playwright.sync_api import expect

    _open_tab(page, app_url, "sentiment")
    page.locator("#sentiment-input textarea").fill("A wonderful film! The acting is superb and the story is moving.")
    page.locator("#sentiment-button").click()
    expect(page.locator("#sentiment-label")).to_contain_text("positive", timeout=60_000)
    expect(page.locator("#sentiment-attribution-text")).to_contain_text("wonderful", timeout=30_000)
    expect(page.locator("#sentiment-tokens")).to_contain_text("xxmaj", timeout=30_000)
    expect(page.locator("#sentiment-next")).not_to_be_empty(timeout=60_000)
    expect(page.locator("#sentiment-continuation")).to_contain_text("moving", timeout=60_000)  # the prompt's end, then new words
    assert page.locator(".toast-body.error").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sentiment-tab.png"), full_page=True)


def test_detection_upload_shows_labelled_boxes(app_url, page):
    from playwright.sync_api import expect

    from conftest import needs_shared

    photo = needs_shared("detection", "raccoon", "images", "raccoon-146.jpg")
    _open_tab(page, app_url, "detection")
    page.locator("#detection-input input[type=file]").set_input_files(str(photo))
    page.locator("#detection-button").click()
    expect(page.locator("#detection-ssd")).to_contain_text("raccoon", timeout=60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "detection-tab.png"), full_page=True)


def _photo_file(tmp_path_factory) -> str:
    """A generated photo-like image (gradients and shapes), so the test needs no data set."""
    import numpy as np
    from PIL import Image, ImageDraw

    y, x = np.mgrid[0:240, 0:320]
    array = np.stack([x * 255 / 320, y * 255 / 240, 128 + 0 * x], axis=-1).astype(np.uint8)
    image = Image.fromarray(array)
    ImageDraw.Draw(image).ellipse((100, 60, 220, 180), fill=(240, 200, 40))
    path = tmp_path_factory.mktemp("style") / "photo.png"
    image.save(path)
    return str(path)


def test_style_upload_pick_a_style_and_see_it_stylised(app_url, page, tmp_path_factory):
    from playwright.sync_api import expect

    _open_tab(page, app_url, "style")
    page.locator("#style-photo input[type=file]").set_input_files(_photo_file(tmp_path_factory))
    page.locator("#style-choice").get_by_text("The Scream (Munch)").click()
    page.locator("#style-instant-button").click()
    expect(page.locator("#style-instant-output img")).to_be_visible(timeout=60_000)
    expect(page.locator("#style-instant-notes")).to_contain_text("one forward pass", timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "style-tab.png"), full_page=True)


def _wait_for_the_stream_to_end(page, selector: str, last: str, stall_seconds: float = 120) -> str:
    """Follow a streamed status line until it shows `last` (the stream's final event). No deadline for the whole
    run, which a loaded machine may take minutes over: fail only when the stream stops moving."""
    text, unchanged_since = "", time.monotonic()
    while last not in text:
        page.wait_for_timeout(500)
        current = page.locator(selector).inner_text()
        if current != text:
            text, unchanged_since = current, time.monotonic()
        assert time.monotonic() - unchanged_since < stall_seconds, f"the stream stalled at: {text!r}"
    return text


def test_style_live_streams_to_the_end(app_url, page, tmp_path_factory):
    from playwright.sync_api import expect

    _open_tab(page, app_url, "style")
    page.locator("#style-photo input[type=file]").set_input_files(_photo_file(tmp_path_factory))
    page.locator("#style-live-tab-button").click()
    page.locator("#style-start").get_by_text("the trained network's output").click()  # lesson 14's pass as the start
    page.locator("#style-live-button").click()
    expect(page.locator("#style-live-output img")).to_be_visible(timeout=60_000)
    status = _wait_for_the_stream_to_end(page, "#style-live-status", "done")
    assert "from the trained network's output" in status
    assert page.locator(".toast-body.error").count() == 0
    page.screenshot(path=str(ARTIFACTS / "style-live-tab.png"), full_page=True)
    # Choosing VGG16 offers its own layers (no run: its weights would need a download).
    page.locator("#style-backbone").get_by_text("VGG16", exact=False).click()
    expect(page.locator("#style-layers")).to_contain_text("relu3_3", timeout=10_000)
    expect(page.locator("#style-layers")).not_to_contain_text("block7")


def test_training_lab_classifies_a_photo_and_shows_its_stages(app_url, page, tmp_path_factory):
    from playwright.sync_api import expect

    _open_tab(page, app_url, "training-lab")
    page.locator("#lab-photo input[type=file]").set_input_files(_photo_file(tmp_path_factory))
    expect(page.locator("#lab-classify-notes")).to_contain_text("32×32", timeout=60_000)  # an upload classifies at once
    expect(page.locator("#lab-stages img")).to_be_visible(timeout=30_000)
    assert page.locator("#lab-label").inner_text().strip()
    assert page.locator(".toast-body.error").count() == 0


def test_training_lab_designs_a_1cycle_schedule_and_trains_live(app_url, page):
    from playwright.sync_api import expect

    from dl_core.paths import data_path

    _open_tab(page, app_url, "training-lab")
    page.locator("#lab-train-tab-button").click()
    page.locator("#lab-preset").get_by_text("SGDR", exact=False).click()
    expect(page.locator("#lab-phases")).to_contain_text("0.5714", timeout=30_000)  # SGDR's cycles: 1/7, 2/7, 4/7 epoch
    page.locator("#lab-preset").get_by_text("1cycle (lesson 12)").click()  # the lesson's 1cycle: three linear phases
    expect(page.locator("#lab-phases")).not_to_contain_text("0.5714", timeout=30_000)
    expect(page.locator("#lab-phases")).to_contain_text("0.85", timeout=30_000)  # momentum 0.95 -> 0.85
    expect(page.locator("#lab-schedule-plot img")).to_be_visible(timeout=30_000)
    page.locator("#lab-n-train input[type=number]").fill("1000")
    page.locator("#lab-n-train input[type=number]").press("Enter")
    page.locator("#lab-epochs input[type=number]").fill("0.5")
    page.locator("#lab-epochs input[type=number]").press("Enter")
    page.locator("#lab-train-button").click()
    if not data_path("cifar10", "cifar10-jpg.zip").is_file():  # offline and no copy: the tab says so, and stays usable
        expect(page.locator("#lab-train-status")).to_contain_text("not on this server", timeout=120_000)
        return
    status = _wait_for_the_stream_to_end(page, "#lab-train-status", "done")
    assert "run 1 (3 phases, peak LR 0.1) done: 8 iterations" in status  # 1000 // 64 = 15 per epoch: 7.5 rounds up
    expect(page.locator("#lab-loss-plot canvas, #lab-loss-plot svg").first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(3000)
    assert page.locator(".toast-body.error").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "training-lab-tab.png"), full_page=True)


def test_segmentation_overlays_a_photo_and_toggles_the_comparison(app_url, page, tmp_path_factory):
    from playwright.sync_api import expect

    from demos.segmentation import camvid_samples

    _open_tab(page, app_url, "segmentation")
    samples = camvid_samples(1)
    photo = samples[0] if samples else _photo_file(tmp_path_factory)  # a street scene where the data is here
    page.locator("#segmentation-input input[type=file]").set_input_files(photo)
    expect(page.locator("#segmentation-notes")).to_contain_text("the networks work at", timeout=60_000)
    expect(page.locator("#segmentation-unet img").first).to_be_visible(timeout=30_000)
    expect(page.locator("#segmentation-plain img").first).to_be_visible(timeout=30_000)
    expect(page.locator("#segmentation-table")).to_contain_text("Road", timeout=30_000)
    assert page.locator(".toast-body.error").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "segmentation-tab.png"), full_page=True)
    page.locator("#segmentation-compare input[type=checkbox]").uncheck()
    expect(page.locator("#segmentation-plain")).to_be_hidden(timeout=30_000)
    page.locator("#segmentation-compare input[type=checkbox]").check()
    expect(page.locator("#segmentation-plain img").first).to_be_visible(timeout=30_000)
    if samples:  # a street scene has road and sky: show the road alone
        expect(page.locator("#segmentation-unet")).to_contain_text("Sky", timeout=30_000)
        page.locator("#segmentation-class").get_by_text("Road", exact=True).click()
        expect(page.locator("#segmentation-unet")).to_contain_text("Road", timeout=30_000)
        expect(page.locator("#segmentation-unet")).not_to_contain_text("Sky", timeout=30_000)
    assert page.locator(".toast-body.error").count() == 0


def test_superres_compares_bicubic_and_both_networks_scores_them_and_zooms(app_url, page):
    from playwright.sync_api import expect

    from demos.superres import benchmark_samples

    _open_tab(page, app_url, "superres")
    samples = benchmark_samples()
    photo = samples[0] if samples else str(REPO_ROOT / "samples" / "chelsea-the-cat.jpg")
    page.locator("#superres-input input[type=file]").set_input_files(photo)  # test mode, x4: the defaults
    expect(page.locator("#superres-notes")).to_contain_text("down-sampled ×4", timeout=90_000)
    expect(page.locator("#superres-table")).to_contain_text("perceptual loss", timeout=30_000)
    expect(page.locator("#superres-slider img").first).to_be_visible(timeout=30_000)
    expect(page.locator("#superres-zoom img").first).to_be_visible(timeout=30_000)
    assert page.locator("#superres-zoom img").count() >= 4  # original, bicubic, pixel, perceptual
    assert page.locator(".toast-body.error").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "superres-tab.png"), full_page=True)
    page.get_by_text("Checkerboard: a fresh sub-pixel layer").click()
    page.locator("#superres-checker-button").click()
    expect(page.locator("#superres-checker-notes")).to_contain_text("ICNR **0.00**".replace("**", ""), timeout=60_000)
    assert page.locator(".toast-body.error").count() == 0


def test_gan_paints_flowers_shows_the_training_story_draws_a_transposed_conv_and_turns_day_to_dusk(
        app_url, page, tmp_path_factory):
    from playwright.sync_api import expect

    from demos.gan import camvid_samples

    _open_tab(page, app_url, "gan")
    page.locator("#gan-seed input").fill("tulips")
    page.locator("#gan-generate").click()
    expect(page.locator("#gan-grid-notes")).to_contain_text("Seed", timeout=60_000)
    expect(page.locator("#gan-grid img").first).to_be_visible(timeout=30_000)
    expect(page.locator("#gan-story-notes")).to_contain_text("FD-Lite0", timeout=60_000)
    expect(page.locator("#gan-story img").first).to_be_visible(timeout=30_000)
    page.get_by_text("Transposed convolution, drawn").click()
    page.locator("#gan-deconv-button").click()
    expect(page.locator("#gan-deconv-notes")).to_contain_text("Output side", timeout=30_000)
    samples = camvid_samples()
    photo = samples[0] if samples else _photo_file(tmp_path_factory)  # a held-out day frame where the data is here
    page.locator("#gan-photo input[type=file]").set_input_files(photo)
    expect(page.locator("#gan-cycle-notes")).to_contain_text("cycle error", timeout=60_000)
    for output in ("#gan-fake", "#gan-back", "#gan-heat"):
        expect(page.locator(f"{output} img").first).to_be_visible(timeout=30_000)
    expect(page.locator("#gan-cycle-about")).to_contain_text("FD-Lite0", timeout=30_000)
    assert page.locator(".toast-body.error").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "gan-tab.png"), full_page=True)


def test_devise_labels_a_photo_with_words_and_finds_images_for_a_word(app_url, page):
    """The first request embeds CIFAR-10's test images where the data is here (minutes, once; then cached on disk)."""
    from playwright.sync_api import expect

    _open_tab(page, app_url, "devise")
    cat = str(REPO_ROOT / "samples" / "chelsea-the-cat.jpg")
    page.locator("#devise-photo input[type=file]").set_input_files(cat)
    expect(page.locator("#devise-image-notes")).to_contain_text("As a CIFAR-10 label", timeout=300_000)
    expect(page.locator("#devise-words")).to_contain_text("cat", timeout=30_000)
    expect(page.locator("#devise-summary")).to_contain_text("never saw a cat, truck", timeout=30_000)
    page.locator("#devise-uploads input[type=file]").set_input_files([cat, str(REPO_ROOT / "samples" / "rocket.jpg")])
    page.locator("#devise-query input").fill("boat")
    page.locator("#devise-search").click()
    expect(page.locator("#devise-found-notes")).to_contain_text("boat: the 12 nearest", timeout=120_000)
    expect(page.locator("#devise-found img").first).to_be_visible(timeout=30_000)
    page.locator("#devise-query input").fill("boat + zzqxv")
    page.locator("#devise-search").click()
    expect(page.locator("#devise-found-notes")).to_contain_text("Not in the vocabulary: zzqxv", timeout=60_000)
    assert page.locator(".toast-body.error").count() == 0
    page.locator("#devise-query input").fill("sail + boat")
    page.locator("#devise-search").click()
    expect(page.locator("#devise-found-notes")).to_contain_text("sail + boat: the 12 nearest", timeout=60_000)
    page.locator("#devise-download").click()  # CIFAR-10 is here: nothing is downloaded, the collection is reported
    expect(page.locator("#devise-download-status")).to_contain_text("10,000 images embedded", timeout=60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "devise-tab.png"), full_page=True)


@pytest.fixture(scope="module")
def phone(page):
    """A second page in the same browser, 420 px wide as a phone held upright."""
    phone = page.context.browser.new_page(viewport={"width": 420, "height": 900}, device_scale_factor=2, is_mobile=True)
    yield phone
    phone.close()


PAGE_OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def test_on_a_phone_every_lesson_tab_is_visible_by_name_and_nothing_overflows(app_url, phone):
    from playwright.sync_api import expect

    import demos

    phone.goto(app_url)
    for tab in demos.tabs():
        button = phone.locator(f"#tab-{tab.ID}-button")
        expect(button).to_be_visible(timeout=30_000)  # not folded into a "More tabs" menu
        assert button.inner_text().strip() == tab.TITLE
        assert button.evaluate("b => b.scrollWidth <= b.clientWidth + 1"), f"{tab.TITLE} is cut off"
    for tab in demos.tabs():
        phone.locator(f"#tab-{tab.ID}-button").click()
        phone.wait_for_timeout(500)
        assert phone.evaluate(PAGE_OVERFLOW) <= 0, f"the {tab.ID} tab scrolls sideways on a phone"


def test_on_a_phone_a_detection_and_a_translation_fit_the_screen(app_url, phone):
    from playwright.sync_api import expect

    phone.goto(app_url)
    phone.locator("#tab-detection-button").click()
    phone.locator("#detection-input input[type=file]").set_input_files(str(REPO_ROOT / "samples" / "chelsea-the-cat.jpg"))
    expect(phone.locator("#detection-ssd")).to_contain_text("raccoon", timeout=60_000)  # the cat is called a raccoon
    assert phone.evaluate(PAGE_OVERFLOW) <= 0, "the detection results scroll sideways"
    phone.locator("#tab-translation-button").click()
    phone.locator("#translation-input textarea").fill("Je ne sais pas pourquoi il est parti.")
    phone.locator("#translation-button").click()
    expect(phone.locator("#translation-attention img")).to_be_visible(timeout=60_000)
    assert phone.evaluate(PAGE_OVERFLOW) <= 0, "the translation results scroll sideways"
    ARTIFACTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / "phone-translation.png"), full_page=True)
