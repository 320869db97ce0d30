"""Lesson 11 tab: DeViSE. A photo's nearest words (beside the plain ImageNet classifier's classes), the images nearest
an expression of words ("sail + boat") among CIFAR-10's test images and the user's own, the images nearest a photo,
a 2-D map of class words and images, and the seen-class penalty that lets unseen classes through.

Pure handlers first (testable without a server), then the layout, then the wiring.
"""
from __future__ import annotations

import functools
import tarfile
import threading
import time
from pathlib import Path

import gradio as gr

from demos.common import (
    ImageFile,
    InvalidSetting,
    LazyModel,
    ModelUnavailable,
    RawRadio,
    RawSlider,
    bundled_photos,
    checked_number,
    code_span,
    compile_note,
    folder_metrics,
)
from dl_core.paths import WEIGHTS_DIR

ID = "devise"
TITLE = "Lesson 11 · DeViSE"
EXPLANATION = Path(__file__).with_suffix(".md").read_text(encoding="utf-8")
NAME = "devise"
TRAIN_COMMAND = "python train/devise.py train --soft-weight 0.3 --out weights/devise"
N_WORDS = 10
N_IMAGES = 12
MAX_UPLOADS = 48  # photos searched alongside the built-in collection, per request
MAX_SIDE = 1024
SCOPES = {"all 100k words": "all", "ImageNet class words only": "imagenet"}
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MAP_IMAGES_PER_CLASS = 30


def _load(folder: str):
    from dl_core.devise.infer import DeviseSearcher  # torch loads with the first request, not with the app

    return DeviseSearcher.load(folder)


def _check(searcher) -> None:
    import torch

    point = searcher.embed(torch.zeros(2, searcher.head.config.in_features))
    if point.shape != (2, searcher.words.dim):
        raise ValueError(f"the head gives {tuple(point.shape)} for 2 feature vectors")


def _fast(searcher):
    from dl_core.fast import speed_up_convnet

    searcher.extractor.net.fold_batchnorm()  # frozen: its batch norms become the convolutions' weights
    speed_up_convnet(searcher.extractor)  # the backbone is the cost: one input size, compiled with frozen weights
    return searcher


MODEL = LazyModel(NAME, _load, TRAIN_COMMAND, check=_check, prepare=_fast)


_COLLECTION_LOCK = threading.Lock()  # two first requests at once would both embed 10,000 images
_DOWNLOAD_LOCK = threading.Lock()  # and two presses of "download" would both write the same archive
CIFAR_DOWNLOAD_DIR = Path("data/cifar10")  # where the training lab's download goes too: one copy serves both tabs


def cifar_source() -> Path | None:
    """The built-in collection's CIFAR-10: the data root's copy, else an earlier download, else None (a fresh Space)."""
    from dl_core.cifar.data import data_root_zip

    if data_root_zip().is_file():
        return data_root_zip()
    downloaded = CIFAR_DOWNLOAD_DIR / "cifar10"
    return downloaded if (downloaded / "test").is_dir() else None


@functools.cache  # once per process and source: 10,000 embeddings, the features read from data/cache
def _builtin_collection(folder: str, source: str):
    from dl_core.devise.infer import cifar_collection

    return cifar_collection(MODEL.get(), source, progress=True)  # the first run's tqdm bar is the request's progress bar


def default_penalty() -> float:
    """The bundled head's own seen-class penalty (read from its config.json: no model is loaded to build the tab)."""
    import json

    try:
        return float(json.loads((WEIGHTS_DIR / NAME / "config.json").read_text()).get("seen_penalty", 0.0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0.0


def builtin_collection():
    """CIFAR-10 test embedded by the loaded head, or None where there is no CIFAR-10 (see `fetch_builtin`)."""
    source = cifar_source()
    if not MODEL.source or source is None:
        return None
    with _COLLECTION_LOCK:
        return _builtin_collection(MODEL.source.location, str(source))


NO_BUILTIN = "No CIFAR-10 on this server: press *Download CIFAR-10* (below) for the built-in collection."


# --- pure handlers ---------------------------------------------------------------------------------------------------
def _words_table(words: list[tuple[str, float]]) -> dict:
    return {word: max(0.0, score) for word, score in words}  # gr.Label's bars: cosines, clipped at 0


def _penalty(value, searcher, notes: list[str]) -> float:
    if value is None:
        return searcher.head.config.seen_penalty
    return checked_number(value, "seen-class penalty", 0.0, 0.6, notes)


def _class_plot(scores: list[dict], penalty: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    names = [row["name"] for row in scores]
    best = max(range(len(scores)), key=lambda i: scores[i]["score"])
    colours = ["#d62728" if i == best else ("#7f7f7f" if row["trained"] else "#1f77b4") for i, row in enumerate(scores)]
    ax.bar(names, [row["score"] for row in scores], color=colours)
    ax.bar(names, [row["cosine"] - row["score"] for row in scores], bottom=[row["score"] for row in scores],
           color="none", edgecolor="#7f7f7f", linestyle=":", hatch="//")
    ax.set_ylabel("cosine − penalty")
    ax.set_title(f"CIFAR-10 names (grey: trained on, penalty {penalty:.2f}; red: the label)", fontsize=9)
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _map_plot(searcher, collection, point):
    """PCA of the class names' vectors, some images of each class and the photo, in the head's word space."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    names = torch.stack([searcher.words.phrase_vector(name) for name in CIFAR_CLASSES])
    images, labels = torch.empty(0, names.shape[1]), []
    if collection is not None:
        generator = torch.Generator().manual_seed(0)
        picked = torch.randperm(len(collection), generator=generator)[:MAP_IMAGES_PER_CLASS * len(CIFAR_CLASSES)]
        images = collection.embeddings[picked]
        labels = [collection.captions[i].rsplit(": ", 1)[-1] for i in picked.tolist()]
    points = torch.cat([names, images, point[None]])
    centred = points - points.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    xy = (centred @ v[:2].T).numpy()
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    cmap = plt.get_cmap("tab10")
    for c, name in enumerate(CIFAR_CLASSES):
        rows = [len(CIFAR_CLASSES) + i for i, label in enumerate(labels) if label == name]
        if rows:
            ax.scatter(xy[rows, 0], xy[rows, 1], s=8, color=cmap(c), alpha=0.45)
        ax.scatter(xy[c, 0], xy[c, 1], s=60, color=cmap(c), marker="s", edgecolor="black")
        trained = name in searcher.head.config.trained_words
        ax.annotate(name + ("" if trained else " (unseen)"), xy[c], fontsize=9, weight="bold" if not trained else None)
    ax.scatter(xy[-1, 0], xy[-1, 1], s=220, marker="*", color="gold", edgecolor="black", zorder=5)
    ax.annotate("your photo", xy[-1], fontsize=9, xytext=(6, 6), textcoords="offset points")
    ax.set_title("Word space, first two principal components (squares: words; dots: CIFAR-10 test images)", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    plt.close(fig)
    return fig


def _gallery(collection, hits) -> list[tuple]:
    return [(collection.image(i), f"{collection.captions[i]} · cos {score:.2f}") for i, score in hits]


EMPTY_IMAGE_RESULT = ({}, {}, None, None, [])


def image_to_words(photo, scope="all 100k words", penalty=None):
    """The /image_words endpoint: nearest words, the classifier's top classes, the 10 class names' scores under the
    penalty, a 2-D map, the nearest CIFAR-10 test images, and notes."""
    from dl_core.images import BadImage, load_rgb

    if scope not in SCOPES:
        return *EMPTY_IMAGE_RESULT, f"⚠️ *words* must be one of {', '.join(SCOPES)}, not {code_span(str(scope)[:40])}."
    try:
        loaded = load_rgb(photo, max_side=MAX_SIDE)
        searcher = MODEL.get()
        notes = list(loaded.notes)
        penalty = _penalty(penalty, searcher, notes)
    except (BadImage, ModelUnavailable, InvalidSetting) as err:
        return *EMPTY_IMAGE_RESULT, f"⚠️ {err}"
    started = time.perf_counter()
    features, logits = searcher.encode([loaded.image])
    backbone_ms = (time.perf_counter() - started) * 1000
    point = searcher.embed(features)[0]
    started = time.perf_counter()
    words = searcher.nearest_words(point, N_WORDS, SCOPES[scope], penalty)
    words_ms = (time.perf_counter() - started) * 1000
    scores = searcher.class_scores(point, list(CIFAR_CLASSES), penalty)
    label = max(scores, key=lambda row: row["score"])["name"]
    collection = builtin_collection()
    similar = _gallery(collection, collection.search(point, N_IMAGES)) if collection is not None else []
    if collection is None:
        notes.append(NO_BUILTIN)
    if MODEL.note:
        notes.append(MODEL.note)
    if compiled := compile_note(searcher.extractor):
        notes.append(compiled)
    text = (f"Backbone {backbone_ms:.0f} ms, nearest of {len(searcher.words):,} words {words_ms:.1f} ms. As a CIFAR-10 "
            f"label (nearest class name, trained names penalised by {penalty:.2f}): **{label}**.")
    return (_words_table(words), _words_table(searcher.classifier_top(logits[0])), _class_plot(scores, penalty),
            _map_plot(searcher, collection, point), similar, "\n\n".join([*(f"ℹ️ {n}" for n in notes), text]))


def _upload_paths(uploads) -> list[str]:
    if uploads is None:
        return []
    if isinstance(uploads, (str, Path)):
        return [str(uploads)]
    if not isinstance(uploads, (list, tuple)):
        raise InvalidSetting(f"*your photos* must be a list of files, not {type(uploads).__name__}.")
    return [str(getattr(item, "path", item) if not isinstance(item, dict) else item.get("path")) for item in uploads]


def words_to_images(query="boat", uploads=None, use_builtin=True, progress=gr.Progress(track_tqdm=True)):
    """The /words_images endpoint: the images nearest an expression of words, among the uploaded photos and (where
    present) CIFAR-10's test images; and notes."""
    from dl_core.devise.infer import photo_collection
    from dl_core.devise.query import QueryError
    from dl_core.images import BadImage, load_rgb

    notes: list[str] = []
    try:
        if not isinstance(query, str):
            raise InvalidSetting(f"*words* must be text, not {type(query).__name__}.")
        searcher = MODEL.get()
        point = searcher.query(query)
        paths = _upload_paths(uploads)
    except (QueryError, InvalidSetting, ModelUnavailable) as err:
        return [], f"⚠️ {err}"
    if len(paths) > MAX_UPLOADS:
        notes.append(f"{len(paths)} photos uploaded: searched the first {MAX_UPLOADS}.")
        paths = paths[:MAX_UPLOADS]
    photos, captions = [], []
    for path in paths:
        try:
            photos.append(load_rgb(path, max_side=MAX_SIDE).image)
            captions.append(f"yours: {Path(path).name}")
        except BadImage as err:
            notes.append(f"Skipped {code_span(Path(path).name[:60])}: {err}")
    collection = photo_collection(searcher, photos, captions)
    builtin = builtin_collection() if use_builtin else None
    if use_builtin and builtin is None:
        notes.append(f"{NO_BUILTIN} Only your photos were searched.")
    started = time.perf_counter()
    hits = [(collection, i, s) for i, s in collection.search(point, N_IMAGES)]
    if builtin is not None:
        hits += [(builtin, i, s) for i, s in builtin.search(point, N_IMAGES)]
    hits = sorted(hits, key=lambda hit: -hit[2])[:N_IMAGES]
    search_ms = (time.perf_counter() - started) * 1000
    if not hits:
        return [], "\n\n".join([*(f"ℹ️ {n}" for n in notes), "⚠️ Nothing to search: upload photos or tick CIFAR-10."])
    searched = len(collection) + (len(builtin) if builtin is not None else 0)
    text = f"{code_span(query.strip()[:200])}: the {len(hits)} nearest of {searched:,} images, searched in {search_ms:.1f} ms."
    gallery = [(c.image(i), f"{c.captions[i]} · cos {s:.2f}") for c, i, s in hits]
    return gallery, "\n\n".join([*(f"ℹ️ {n}" for n in notes), text])


def fetch_builtin(progress=gr.Progress(track_tqdm=True)) -> str:
    """The /download_cifar endpoint: where this server has no CIFAR-10 (a fresh Space), download the lesson's copy
    (fast.ai's PNG archive, ~130 MB; torchvision's is pickled, which this project never loads) and embed its test
    split once, so that the built-in collection can be searched. A status line."""
    from dl_core.cifar.data import download_cifar10
    from dl_core.paths import display_path

    try:
        MODEL.get()
    except ModelUnavailable as err:
        return f"⚠️ {err}"
    with _DOWNLOAD_LOCK:
        if cifar_source() is None:
            try:
                download_cifar10(CIFAR_DOWNLOAD_DIR)
            except (OSError, tarfile.TarError) as err:  # offline, refused, timed out, disk full, a broken archive
                return (f"⚠️ Could not download CIFAR-10 from fast.ai ({type(err).__name__}: {str(err)[:160]}). "
                        "Your own photos can still be searched.")
    source = cifar_source()
    if source is None:
        return f"⚠️ The download holds no test/ folder under {display_path(CIFAR_DOWNLOAD_DIR)}."
    try:
        collection = builtin_collection()
    except (OSError, ValueError) as err:
        return f"⚠️ Could not read CIFAR-10 at {display_path(source)}: {str(err)[:200]}"
    return f"CIFAR-10 test ({display_path(source)}): {len(collection):,} images embedded and searchable."


def model_summary() -> str:
    """The bundled head's zero-shot scores, from its metrics.json."""
    try:
        MODEL.get()
    except ModelUnavailable as err:
        return f"⚠️ {err}"
    test = folder_metrics(MODEL.source.location).get("test")
    if not test:
        return ""
    unseen = ", ".join(folder_metrics(MODEL.source.location).get("unseen", []))
    return (f"**These weights** never saw a {unseen} in training. On CIFAR-10's test images, labelled by the nearest "
            f"class name: unseen classes **{test['top1_unseen']:.1%}** right (ConSE, no training: "
            f"{test['conse_top1_unseen']:.1%}; without the penalty: {test['top1_unseen_uncalibrated']:.1%}), all "
            f"classes {test['top1_all']:.1%} ({test['top1_all_uncalibrated']:.1%} without). Chance is 10%.")


def image_words_endpoint(photo, scope="all 100k words", penalty=None, progress=gr.Progress(track_tqdm=True)):
    return (*image_to_words(photo, scope, penalty), model_summary())


# --- layout and wiring -----------------------------------------------------------------------------------------------
def build() -> None:
    with gr.Row():
        with gr.Column(scale=3):
            gr.Markdown("### Image → words")
            with gr.Row():
                photo = ImageFile(type="filepath", label="Photo", sources=["upload", "clipboard"], elem_id="devise-photo",
                                  height=260)
                with gr.Column(min_width=220):
                    scope = RawRadio(list(SCOPES), value="all 100k words", label="words", elem_id="devise-scope")
                    penalty = RawSlider(0, 0.6, value=default_penalty(), step=0.01, label="seen-class penalty (the trained names' handicap)",
                                        elem_id="devise-penalty")
                    go = gr.Button("Find words", variant="primary", elem_id="devise-go")
            gr.Examples([[p] for p in bundled_photos()], inputs=[photo], cache_examples=False, api_visibility="private",
                        label="Sample photos (see samples/README.md)")
            with gr.Row():
                words = gr.Label(num_top_classes=N_WORDS, label="DeViSE: nearest words (cosine, trained names minus the penalty)", elem_id="devise-words")
                classes = gr.Label(num_top_classes=5, label="the plain ImageNet classifier", elem_id="devise-classes")
            image_notes = gr.Markdown(elem_id="devise-image-notes")
            summary = gr.Markdown(elem_id="devise-summary")
            with gr.Row():
                class_plot = gr.Plot(show_label=False)
                map_plot = gr.Plot(show_label=False)
            similar = gr.Gallery(label="nearest CIFAR-10 test images (image → images)", columns=6, height=240,
                                 elem_id="devise-similar")
            gr.Markdown("### Words → images")
            with gr.Row():
                query = gr.Textbox(value="boat", label="words (e.g. sail + boat, boat - water)", max_lines=1,
                                   elem_id="devise-query")
                use_builtin = gr.Checkbox(value=True, label="search CIFAR-10 test too", elem_id="devise-builtin")
                search = gr.Button("Search", variant="primary", elem_id="devise-search")
            with gr.Row():
                download = gr.Button("Download CIFAR-10 (130 MB, where this server has none)", size="sm",
                                     elem_id="devise-download")
                download_status = gr.Markdown(elem_id="devise-download-status")
            uploads = gr.File(file_count="multiple", file_types=["image"], label=f"your photos (up to {MAX_UPLOADS})",
                              elem_id="devise-uploads")
            found = gr.Gallery(label="nearest images", columns=6, height=260, elem_id="devise-found")
            found_notes = gr.Markdown(elem_id="devise-found-notes")
        with gr.Column(scale=2, min_width=280):
            gr.Markdown(EXPLANATION, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                       {"left": "$", "right": "$", "display": False}])

    outputs = [words, classes, class_plot, map_plot, similar, image_notes, summary]
    go.click(image_words_endpoint, [photo, scope, penalty], outputs, api_name="image_words", concurrency_id="cpu")
    photo.change(image_words_endpoint, [photo, scope, penalty], outputs, api_visibility="private", concurrency_id="cpu",
                 trigger_mode="always_last")
    penalty.release(image_words_endpoint, [photo, scope, penalty], outputs, api_visibility="private",
                    concurrency_id="cpu")
    search.click(words_to_images, [query, uploads, use_builtin], [found, found_notes], api_name="words_images",
                 concurrency_id="cpu")
    download.click(fetch_builtin, None, download_status, api_name="download_cifar", concurrency_id="cpu")
    query.submit(words_to_images, [query, uploads, use_builtin], [found, found_notes], api_visibility="private",
                 concurrency_id="cpu")


if __name__ == "__main__":
    import sys

    from demos.common import launch_alone

    launch_alone(sys.modules[__name__])
