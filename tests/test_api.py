"""The running app driven as scripts drive it: a corpus of bad input sent to every public endpoint.

Each case must come back either as a normal answer or as an error that says what is wrong – never Gradio's
generic "the app raised an exception" – and the app must still answer afterwards. Values gradio_client cannot
encode (NaN, infinity, null where a number belongs, lone surrogates) go through Gradio's documented HTTP API
(`POST /gradio_api/call/<endpoint>`, then read its event stream), which takes any JSON.
"""
from __future__ import annotations

import json

import httpx
import pytest

from conftest import REPO_ROOT, png_header

pytestmark = pytest.mark.slow

GENERIC_ERRORS = ("has raised an exception", "Traceback", "Internal Server Error")
STARRY = "Starry Night (Van Gogh)"
PHOTO = REPO_ROOT / "samples" / "chelsea-the-cat.jpg"
MEGABYTE_OF_TEXT = "mot " * 250_000


@pytest.fixture(scope="module")
def app_url():
    import app as app_module

    demo = app_module.build_app()
    _, url, _ = app_module.serve(demo, prevent_thread_lock=True, quiet=True)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    yield client
    client.close()


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-files")
    files = {
        "not an image": ("notes.jpg", b"this is text, not a JPEG\n" * 40),
        "empty file": ("empty.png", b""),
        "svg": ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
        # a valid PNG header claiming 30,000 x 30,000 pixels: a decompression bomb in 60 bytes
        "giant dimensions": ("giant.png", png_header(30_000, 30_000)),
    }
    paths = {}
    for name, (filename, data) in files.items():
        paths[name] = folder / filename
        paths[name].write_bytes(data)
    return paths


def call_with_client(client, endpoint: str, **kwargs) -> tuple[str, object]:
    """("complete", outputs) or ("error", message)."""
    from gradio_client.exceptions import AppError

    try:
        return "complete", client.predict(api_name=endpoint, **kwargs)
    except AppError as err:
        return "error", str(err)
    except ValueError as err:  # gradio_client refusing a value before sending it is a message too
        return "error", str(err)


def call_raw(app_url: str, endpoint: str, data: list, timeout: float = 300) -> tuple[str, object]:
    """Gradio's HTTP API with any JSON (allow_nan: NaN/Infinity literals; ensure_ascii: lone surrogates)."""
    body = json.dumps({"data": data}, allow_nan=True, ensure_ascii=True)
    started = httpx.post(f"{app_url}gradio_api/call{endpoint}", content=body,
                         headers={"content-type": "application/json"}, timeout=30)
    assert started.status_code == 200, started.text
    event_id = started.json()["event_id"]
    event = None
    with httpx.stream("GET", f"{app_url}gradio_api/call{endpoint}/{event_id}", timeout=timeout) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = line.split(":", 1)[1].strip()
                return event, (json.loads(payload) if event == "complete" else payload)
    return "closed", None


def upload(app_url: str, path) -> dict:
    response = httpx.post(f"{app_url}gradio_api/upload", files={"files": (path.name, path.read_bytes())}, timeout=60)
    assert response.status_code == 200, response.text
    return {"path": response.json()[0], "meta": {"_type": "gradio.FileData"}}


def texts_in(outputs) -> str:
    """Every string inside an endpoint's outputs, joined (notes, labels, HTML...)."""
    if isinstance(outputs, str):
        return outputs
    if isinstance(outputs, dict):
        return " ".join(texts_in(v) for v in outputs.values())
    if isinstance(outputs, (list, tuple)):
        return " ".join(texts_in(v) for v in outputs)
    return ""


def assert_answered_clearly(outcome: tuple[str, object]) -> None:
    kind, value = outcome
    assert kind in ("complete", "error"), f"no answer: {outcome}"
    if kind == "error":
        assert value and value not in ("null", "None", '"Error"'), f"an error without a message: {value!r}"
    text = texts_in(value) if kind == "complete" else str(value)
    assert not any(generic in text for generic in GENERIC_ERRORS), f"a generic error or traceback: {text[:500]}"


# (case id, endpoint, keyword arguments) sent through gradio_client; "{file:<name>}" is a bad file from bad_files
CLIENT_CASES = [
    ("detect: not an image", "/detect", dict(photo="{file:not an image}")),
    ("detect: empty file", "/detect", dict(photo="{file:empty file}")),
    ("detect: svg with a script", "/detect", dict(photo="{file:svg}")),
    ("detect: 30,000 x 30,000 px", "/detect", dict(photo="{file:giant dimensions}")),
    ("detect: threshold below range", "/detect", dict(photo="{file:photo}", score_threshold=-1)),
    ("detect: threshold far above range", "/detect", dict(photo="{file:photo}", score_threshold=1e9)),
    ("detect: unknown anchor grid", "/detect", dict(photo="{file:photo}", anchor_grid="9×9")),
    ("detect: text for a threshold", "/detect", dict(photo="{file:photo}", nms_iou_threshold="abc")),
    ("detect: text for a boolean", "/detect", dict(photo="{file:photo}", use_nms="yes")),
    ("focal loss: negative gamma", "/focal_loss_plot", dict(gamma=-3)),
    ("focal loss: huge gamma", "/focal_loss_plot", dict(gamma=1e6)),
    ("classify: empty", "/classify", dict(review="")),
    ("classify: a megabyte", "/classify", dict(review=MEGABYTE_OF_TEXT)),
    ("classify: script and markup", "/classify", dict(review="<script>alert(1)</script><img src=x onerror=alert(1)> &lt;3")),
    ("classify: backticks and dollars", "/classify", dict(review="```$x$``` `code` $$ j'adore c'est <3")),
    ("continue: 20-digit seed", "/continue_text", dict(review="A fine film.", seed=10**20)),
    ("continue: negative temperature", "/continue_text", dict(review="A fine film.", temperature=-1)),
    ("continue: a billion words", "/continue_text", dict(review="A fine film.", words_to_generate=10**9)),
    ("continue: top-k zero", "/continue_text", dict(review="A fine film.", top_k=0)),
    ("continue: text for top-k", "/continue_text", dict(review="A fine film.", top_k="ten")),
    ("translate: empty", "/translate", dict(french_text="")),
    ("translate: a megabyte", "/translate", dict(french_text=MEGABYTE_OF_TEXT)),
    ("translate: dollars", "/translate", dict(french_text="Ça coûte 5$$. x$_$y")),
    ("translate: backticks and markup", "/translate", dict(french_text="Il a dit `bonjour` <b>fort</b> & *vite*.")),
    ("translate: beam width 99", "/translate", dict(french_text="Bonjour.", beam_width=99)),
    ("translate: beam width -1", "/translate", dict(french_text="Bonjour.", beam_width=-1)),
    ("translate: a megabyte of reference", "/translate", dict(french_text="Bonjour.", reference_translation=MEGABYTE_OF_TEXT)),
    ("image words: not an image", "/image_words", dict(photo="{file:not an image}")),
    ("image words: 30,000 x 30,000 px", "/image_words", dict(photo="{file:giant dimensions}")),
    ("image words: unknown scope", "/image_words", dict(photo="{file:photo}", scope="every word ever")),
    ("image words: penalty far above range", "/image_words", dict(photo="{file:photo}", penalty=1e9)),
    ("words images: a thousand terms", "/words_images", dict(query=" + ".join(["boat"] * 1000))),
    ("words images: unknown words", "/words_images", dict(query="zzqxv + boat - qqwwz")),
    ("words images: punctuation only", "/words_images", dict(query="!!! ???")),
    ("words images: a megabyte", "/words_images", dict(query=MEGABYTE_OF_TEXT)),
    ("words images: an upload that is not an image", "/words_images",
     dict(query="boat", uploads=["{file:not an image}", "{file:photo}"], use_builtin=False)),
    ("flowers: a 40-digit seed", "/flowers", dict(seed="9" * 40)),
    ("flowers: text for a seed", "/flowers", dict(seed="tulips <b>please</b>")),
    ("flowers: unknown network", "/flowers", dict(seed="0", network="spectral norm")),
    ("walk: a million frames", "/latent_walk", dict(seed_a=0, seed_b=1, frames=10**6)),
    ("walk: negative seed", "/latent_walk", dict(seed_a=-5, seed_b=1, frames=3)),
    ("transposed conv: stride 99", "/transposed_conv", dict(size=3, kernel=3, stride=99, padding=1)),
    ("transposed conv: padding too big", "/transposed_conv", dict(size=2, kernel=1, stride=1, padding=2)),
    ("day/dusk: not an image", "/day_dusk", dict(photo="{file:not an image}")),
    ("day/dusk: 30,000 x 30,000 px", "/day_dusk", dict(photo="{file:giant dimensions}")),
    ("day/dusk: unknown direction", "/day_dusk", dict(photo="{file:photo}", direction="noon → midnight")),
    ("stylise: not an image", "/stylise", dict(photo="{file:not an image}")),
    ("stylise: 30,000 x 30,000 px", "/stylise", dict(photo="{file:giant dimensions}")),
    ("stylise: unknown style", "/stylise", dict(photo="{file:photo}", style="Mona Lisa (da Vinci)")),
    ("stylise: output size 100,000", "/stylise", dict(photo="{file:photo}", output_size=100_000)),
    ("live: unknown style and no painting", "/style_live", dict(photo="{file:photo}", style="Mona Lisa (da Vinci)", steps=2)),
    ("live: a billion steps", "/style_live", dict(photo="{file:photo}", steps=10**9, image_size=96)),  # run to the cap
    ("live: no style layers", "/style_live", dict(photo="{file:photo}", style_layers=[], steps=2)),
    ("live: unknown layer", "/style_live", dict(photo="{file:photo}", style_layers=["block99"], steps=2)),
    ("live: negative image size", "/style_live", dict(photo="{file:photo}", image_size=-5, steps=2)),
    ("live: unknown feature network", "/style_live", dict(photo="{file:photo}", feature_network="ResNet-1000", steps=2)),
    ("live: painting that is not an image", "/style_live", dict(photo="{file:photo}", painting="{file:not an image}", steps=2)),
    ("reconstruct: not an image", "/style_reconstruct", dict(photo="{file:not an image}")),
    ("classify image: not an image", "/classify_image", dict(photo="{file:not an image}")),
    ("classify image: 30,000 x 30,000 px", "/classify_image", dict(photo="{file:giant dimensions}")),
    ("classify image: svg with a script", "/classify_image", dict(photo="{file:svg}")),
    ("design: a sentence for a table", "/design_schedule", dict(phases="1cycle please")),
    ("design: 5,000 phases", "/design_schedule", dict(phases=[[1, 0.1, 0.1, "linear", 0.9, 0.9, "linear", 0.9]] * 5000)),
    ("design: negative LR", "/design_schedule", dict(phases=[[1, -0.1, 0.1, "linear", 0.9, 0.9, "linear", 0.9]])),
    ("design: momentum 1.5", "/design_schedule", dict(phases=[[1, 0.1, 0.1, "linear", 1.5, 0.9, "linear", 0.9]])),
    ("design: unknown decay", "/design_schedule", dict(phases=[[1, 0.1, 0.1, "zigzag", 0.9, 0.9, "linear", 0.9]])),
    ("train live: a billion images, a quarter epoch", "/train_live",  # run to the caps: 5,000 images
     dict(phases=[[1, 0.1, 0.01, "cosine", 0.9, 0.9, "constant", 0.9]], training_images=10**9, epochs=0.25)),
    ("train live: zero-length phase", "/train_live", dict(phases=[[0, 0.1, 0.01, "cosine", 0.9, 0.9, "constant", 0.9]])),
    ("train live: a thousand epochs", "/train_live",
     dict(phases=[[1, 0.1, 0.01, "cosine", 0.9, 0.9, "constant", 0.9]], training_images=500, epochs=1000)),
    ("lr finder: text for images", "/lr_find", dict(training_images="many")),
    ("segment: not an image", "/segment", dict(photo="{file:not an image}")),
    ("segment: empty file", "/segment", dict(photo="{file:empty file}")),
    ("segment: 30,000 x 30,000 px", "/segment", dict(photo="{file:giant dimensions}")),
    ("segment: opacity far above range", "/segment", dict(photo="{file:photo}", opacity=1e9)),
    ("segment: unknown class", "/segment", dict(photo="{file:photo}", shown="Dog")),
    ("segment: text for a boolean", "/segment", dict(photo="{file:photo}", compare="yes")),
    ("enlarge: not an image", "/enlarge", dict(photo="{file:not an image}")),
    ("enlarge: empty file", "/enlarge", dict(photo="{file:empty file}")),
    ("enlarge: 30,000 x 30,000 px", "/enlarge", dict(photo="{file:giant dimensions}")),
    ("enlarge: scale x3", "/enlarge", dict(photo="{file:photo}", scale="×3")),
    ("enlarge: unknown mode", "/enlarge", dict(photo="{file:photo}", mode="zoom and enhance")),
    ("checkerboard: not an image", "/checkerboard", dict(photo="{file:not an image}")),
    ("checkerboard: seed far above range", "/checkerboard", dict(photo="{file:photo}", seed=1e12)),
]

# (case id, endpoint, data list in the endpoint's parameter order) sent as raw JSON; "{file:...}" as above
RAW_CASES = [
    ("detect: no photo", "/detect", [None, 0.3, 0.45, True, "4×4"]),
    ("detect: NaN threshold", "/detect", ["{file:photo}", float("nan"), 0.45, True, "4×4"]),
    ("detect: infinite NMS threshold", "/detect", ["{file:photo}", 0.3, float("inf"), True, "4×4"]),
    ("detect: null threshold", "/detect", ["{file:photo}", None, 0.45, True, "4×4"]),
    ("focal loss: NaN gamma", "/focal_loss_plot", [float("nan")]),
    ("classify: lone surrogate", "/classify", ["bon\ud800film"]),
    ("classify: null review", "/classify", [None]),
    ("classify: a number for a review", "/classify", [12345]),
    ("continue: NaN seed", "/continue_text", ["A fine film.", 20, 0.8, 40, float("nan")]),
    ("continue: NaN temperature", "/continue_text", ["A fine film.", 20, float("nan"), 40, 0]),
    ("continue: null settings", "/continue_text", ["A fine film.", None, None, None, None]),
    ("translate: lone surrogate", "/translate", ["Je suis \ud800 content.", 5, ""]),
    ("translate: NaN beam width", "/translate", ["Bonjour.", float("nan"), ""]),
    ("translate: null text", "/translate", [None, 5, ""]),
    ("image words: no photo", "/image_words", [None, None, None]),
    ("image words: NaN penalty", "/image_words", ["{file:photo}", "all 100k words", float("nan")]),
    ("words images: null query", "/words_images", [None, None, None]),
    ("flowers: null seed", "/flowers", [None, None]),
    ("walk: NaN frames", "/latent_walk", [0, 1, float("nan"), None]),
    ("transposed conv: infinite kernel", "/transposed_conv", [3, float("inf"), 2, 1]),
    ("day/dusk: no photo", "/day_dusk", [None, None]),
    ("stylise: no photo", "/stylise", [None, STARRY, 512]),
    ("stylise: NaN size", "/stylise", ["{file:photo}", STARRY, float("nan")]),
    ("live: NaN steps", "/style_live", ["{file:photo}", STARRY, None, 1, 1, ["stem", "block2"], 128, float("nan"), "content",
                                        "EfficientNet-Lite0 (bundled, offline)"]),
    ("live: infinite content weight", "/style_live", ["{file:photo}", STARRY, None, float("inf"), 1, ["stem", "block2"], 128, 2,
                                                      "content", "EfficientNet-Lite0 (bundled, offline)"]),
    ("reconstruct: no photo", "/style_reconstruct", [None]),
    ("classify image: no photo", "/classify_image", [None]),
    ("design: NaN length", "/design_schedule", [{"headers": [], "data": [[float("nan"), 0.1, 0.1, "linear", 0.9, 0.9, "linear", 0.9]]}, 4000]),
    ("design: null table", "/design_schedule", [None, 4000]),
    ("train live: NaN epochs", "/train_live", [{"headers": [], "data": [[1, 0.1, 0.1, "linear", 0.9, 0.9, "linear", 0.9]]}, 500, float("nan")]),
    ("lr finder: infinite images", "/lr_find", [float("inf")]),
    ("segment: no photo", "/segment", [None, 0.5, "all classes", True]),
    ("segment: NaN opacity", "/segment", ["{file:photo}", float("nan"), "all classes", True]),
    ("segment: null settings", "/segment", ["{file:photo}", None, None, None]),
    ("enlarge: no photo", "/enlarge", [None, "×4", "test against the original"]),
    ("enlarge: null settings", "/enlarge", ["{file:photo}", None, None]),
    ("enlarge: a number for the scale", "/enlarge", ["{file:photo}", 4.5, "enlarge my photo"]),
    ("checkerboard: NaN seed", "/checkerboard", ["{file:photo}", float("nan")]),
]


def _with_files(value, files: dict, to_file):
    if isinstance(value, str) and value.startswith("{file:"):
        name = value[len("{file:"):-1]
        return to_file(PHOTO if name == "photo" else files[name])
    if isinstance(value, list):
        return [_with_files(v, files, to_file) for v in value]
    return value


def test_the_corpus_has_at_least_forty_cases_covering_every_public_endpoint(client):
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    covered = {endpoint for _, endpoint, _ in CLIENT_CASES + RAW_CASES}
    assert len(CLIENT_CASES) + len(RAW_CASES) >= 40
    untested = endpoints - covered - {"/sentiment_model_facts", "/schedule_figure", "/cifar_test_image",
                                  "/download_cifar"}  # no inputs to get wrong
    assert not untested, f"public endpoints without a bad-input case: {sorted(untested)}"


@pytest.mark.parametrize("case", CLIENT_CASES, ids=[c[0] for c in CLIENT_CASES])
def test_bad_input_through_gradio_client_gets_a_clear_answer(client, bad_files, case):
    from gradio_client import handle_file

    _, endpoint, kwargs = case
    kwargs = {k: _with_files(v, bad_files, lambda p: handle_file(str(p))) for k, v in kwargs.items()}
    assert_answered_clearly(call_with_client(client, endpoint, **kwargs))


@pytest.mark.parametrize("case", RAW_CASES, ids=[c[0] for c in RAW_CASES])
def test_values_no_client_would_send_get_a_clear_answer(app_url, bad_files, case):
    _, endpoint, data = case
    data = _with_files(data, bad_files, lambda p: upload(app_url, p))
    assert_answered_clearly(call_raw(app_url, endpoint, data))


def test_the_app_still_answers_after_the_corpus(client):
    greedy, *_ = client.predict(french_text="Je ne sais pas.", api_name="/translate")
    assert "know" in greedy
    assert client.predict(gamma=2.0, api_name="/focal_loss_plot") is not None


def test_a_call_that_would_bypass_the_queue_is_refused(app_url):
    """/gradio_api/run/<name> would run at once, past the 2-call concurrency limit and the 32-slot queue."""
    response = httpx.post(f"{app_url}gradio_api/run/translate", json={"data": ["Bonjour.", 5, ""]}, timeout=60)
    assert response.status_code >= 400 and "Bonjour" not in response.text


def test_an_upload_over_the_size_limit_is_refused(app_url):
    import app as app_module

    too_big = b"\0" * (21 * 1024 * 1024)
    response = httpx.post(f"{app_url}gradio_api/upload", files={"files": ("big.jpg", too_big)}, timeout=120)
    assert app_module.MAX_UPLOAD == "20mb" and response.status_code == 413, response.text[:300]


def test_the_readmes_use_it_from_python_example_runs_against_the_app(app_url, monkeypatch, capsys):
    import re

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use it from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'Client("http://127.0.0.1:7860/")' in code
    monkeypatch.chdir(REPO_ROOT)  # the example's sample photo path is relative to the checkout
    namespace: dict = {}
    exec(compile(code.replace("http://127.0.0.1:7860/", app_url), "README.md", "exec"), namespace)
    assert "know" in namespace["beam"]
    assert namespace["sentiment"]["label"] == "positive"
    assert namespace["words"]["label"] and len(namespace["words"]["confidences"]) == 10  # the photo's nearest words
    printed = capsys.readouterr().out
    assert "positive" in printed and namespace["words"]["label"] in printed
