"""Lesson 12 tab: GANs. A WGAN's flowers from any seed, the same noise as the generator learnt, a walk between two
seeds, the critic's Wasserstein estimate over training, a transposed convolution drawn; a CycleGAN that turns day
street scenes into dusk (and back) with the cycle's reconstruction and its error.

Pure handlers first (testable without a server), then the layout, then the wiring.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import gradio as gr

from demos.common import (
    ImageFile,
    InvalidSetting,
    LazyModel,
    ModelUnavailable,
    RawNumber,
    RawRadio,
    RawSlider,
    bundled_photos,
    checked_number,
    compile_note,
    folder_metrics,
)
from dl_core.paths import data_path

ID = "gan"
TITLE = "Lesson 12 · GANs"
EXPLANATION = Path(__file__).with_suffix(".md").read_text(encoding="utf-8")
GRID = 4  # flowers per side of the grid
MAX_WALK_FRAMES = 24
MAX_PHOTO_SIDE = 480  # CamVid's frame size: the CycleGAN was trained on crops of 480x360 frames
WGAN_TRAIN = {
    "wgan-flowers": "python train/wgan.py train --ngf 32 --ndf 32 --bs 32 --epochs 40 --time-budget 2700 "
                    "--out weights/wgan-flowers",
    "wgan-gp-flowers": "python train/wgan.py train --gp 10 --ngf 32 --ndf 32 --bs 32 --epochs 40 --time-budget 2700 "
                       "--out weights/wgan-gp-flowers, then on from its checkpoint with --resume --time-budget 1200, "
                       "then --resume --epochs 60 --time-budget 1080",
}
WGAN_LABELS = {"weight clipping (the lesson's)": "wgan-flowers", "gradient penalty (WGAN-GP)": "wgan-gp-flowers"}
DEFAULT_WGAN = "gradient penalty (WGAN-GP)"  # the better flowers (lower FD-Lite0); the lesson's is one click away
CYCLE_NAME = "cyclegan-dusk"
CYCLE_TRAIN = "python train/cyclegan.py train --out weights/cyclegan-dusk"
DAY_TO_DUSK, DUSK_TO_DAY = "day → dusk", "dusk → day"


def _load_generator(folder: str):
    from dl_core.gan.model import DCGANGenerator  # torch loads with the first request, not with the app
    from dl_core.hub import load_model

    return load_model(DCGANGenerator, folder)


def _load_cycle(folder: str):
    from dl_core.gan.model import CycleGenerators
    from dl_core.hub import load_model

    return load_model(CycleGenerators, folder)


def _check_generator(generator) -> None:
    import torch

    with torch.no_grad():
        out = generator(generator.noise(1))
    if out.shape[1:] != (3, generator.config.size, generator.config.size):
        raise ValueError(f"the generator gives {tuple(out.shape)} for one noise vector")


def _check_cycle(generators) -> None:
    import torch

    with torch.no_grad():
        out = generators(torch.zeros(1, 3, 16, 16))
    if out.shape != (1, 3, 16, 16):
        raise ValueError(f"the generator gives {tuple(out.shape)} for a 16x16 input")


def _fast_generator(generator):
    from dl_core.fast import speed_up_convnet

    return speed_up_convnet(generator)  # bf16 + torch.compile (a grid, a walk: a few batch sizes)


def _fast_cycle(generators):
    from dl_core.fast import speed_up_convnet

    for direction in (generators.a_to_b, generators.b_to_a):  # what the tab calls; photos of any size: dynamic
        speed_up_convnet(direction, dynamic=True)
    return generators


GENERATORS = {name: LazyModel(name, _load_generator, command, check=_check_generator, prepare=_fast_generator)
              for name, command in WGAN_TRAIN.items()}
CYCLE = {CYCLE_NAME: LazyModel(CYCLE_NAME, _load_cycle, CYCLE_TRAIN, check=_check_cycle, prepare=_fast_cycle)}


# --- pure handlers: WGAN ---------------------------------------------------------------------------------------
def seed_from(value, notes: list[str]) -> int:
    """Any seed a user can type, as a 32-bit one: whole numbers of any size modulo 2^32, other text by its hash."""
    if value is None or (isinstance(value, str) and not value.strip()):
        notes.append("No seed given: used 0.")
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return value % 2**32
    text = str(value).strip()[:1000]
    if text.lstrip("-").isdigit() and len(text) <= 400:
        return int(text) % 2**32
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    notes.append(f"The seed {text[:40]!r} is not a whole number: used its hash, {seed}.")
    return seed


def _generator(network, notes: list[str]):
    name = WGAN_LABELS.get(network, network if network in GENERATORS else None)
    if name is None:
        raise InvalidSetting(f"*network* must be one of {', '.join(WGAN_LABELS)}, not {str(network)[:40]!r}.")
    model = GENERATORS[name]
    generator = model.get()
    if model.note:
        notes.append(model.note)
    return name, model, generator


def _grid_image(images, columns: int):
    """uint8 (n, 3, H, W) -> one PIL image, `columns` per row, 2-px white gutters."""
    import numpy as np
    from PIL import Image

    n, _, h, w = images.shape
    rows = -(-n // columns)
    canvas = np.full((rows * (h + 2) - 2, columns * (w + 2) - 2, 3), 255, np.uint8)
    for i, image in enumerate(images.permute(0, 2, 3, 1).numpy()):
        r, c = divmod(i, columns)
        canvas[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = image
    return Image.fromarray(canvas)


def _noise(generator, seed: int, n: int):
    import torch

    return torch.randn(n, generator.config.nz, generator=torch.Generator().manual_seed(seed))


def flowers(seed=0, network=DEFAULT_WGAN):
    """The /flowers endpoint: a 4x4 grid of generated flowers from a seed, and notes."""
    import torch

    from dl_core.gan.data import to_uint8

    notes: list[str] = []
    try:
        seed = seed_from(seed, notes)
        _, _, generator = _generator(network, notes)
    except (InvalidSetting, ModelUnavailable) as err:
        return None, f"⚠️ {err}"
    started = time.perf_counter()
    with torch.inference_mode():
        images = to_uint8(generator(_noise(generator, seed, GRID * GRID)))
    grid = _grid_image(images, GRID).resize((GRID * 128, GRID * 128))
    ms = (time.perf_counter() - started) * 1000
    text = (f"Seed **{seed}**: {GRID * GRID} noise vectors of {generator.config.nz} numbers, each through the generator "
            f"once ({ms:.0f} ms). The same seed always gives the same flowers. {compile_note(generator)}").rstrip()
    return grid, "\n\n".join([*(f"ℹ️ {note}" for note in notes), text])


def new_seed() -> int:
    import random

    return random.randrange(2**32)


def slerp(a, b, t: float):
    """Spherical interpolation between noise vectors: the path stays where Gaussian noise lives (a straight line
    through the middle passes vectors shorter than any the generator was trained on)."""
    import torch

    cos = (a * b).sum() / (a.norm() * b.norm())
    omega = torch.arccos(cos.clamp(-1, 1))
    if omega.abs() < 1e-6:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def latent_walk(seed_a=0, seed_b=1, frames=10, network=DEFAULT_WGAN):
    """The /latent_walk endpoint: a strip of frames from seed A's first flower to seed B's, and notes."""
    import torch

    from dl_core.gan.data import to_uint8

    notes: list[str] = []
    try:
        a, b = seed_from(seed_a, notes), seed_from(seed_b, notes)
        n = int(checked_number(frames, "frames", 2, MAX_WALK_FRAMES, notes))
        _, _, generator = _generator(network, notes)
    except (InvalidSetting, ModelUnavailable) as err:
        return None, f"⚠️ {err}"
    start, end = _noise(generator, a, 1)[0], _noise(generator, b, 1)[0]
    path = torch.stack([slerp(start, end, i / (n - 1)) for i in range(n)])
    with torch.inference_mode():
        images = to_uint8(generator(path))
    strip = _grid_image(images, min(n, 12))
    strip = strip.resize((strip.width * 2, strip.height * 2))
    text = f"{n} frames on the great circle from seed {a}'s first flower to seed {b}'s."
    return strip, "\n\n".join([*(f"ℹ️ {note}" for note in notes), text])


def training_story(network=DEFAULT_WGAN):
    """The fixed noise across training (story_image), the Wasserstein-estimate plot and a summary."""
    notes: list[str] = []
    try:
        name, model, generator = _generator(network, notes)
    except (InvalidSetting, ModelUnavailable) as err:
        return None, None, f"⚠️ {err}"
    from dl_core.gan.card import GALLERY_FILE, load_gallery

    folder = Path(model.source.location)
    metrics = folder_metrics(str(folder))
    story = None
    if (folder / GALLERY_FILE).is_file() and metrics.get("gallery_epochs"):
        story = story_image(load_gallery(folder, metrics["gallery_epochs"]))
    history = metrics.get("history", [])
    figure = wasserstein_figure(history) if history else None
    scores = metrics.get("scores", {})
    summary = ""
    if scores:
        summary = (f"**These weights** (`{name}`): FD-Lite0 **{scores['fd']:.1f}** for {scores['n']} generated flowers vs "
                   f"the held-out real ones; real training flowers score {scores['fd_real']:.1f} (the floor), "
                   f"{scores['fd'] / scores['fd_real']:.1f}× it.")
    return story, figure, "\n\n".join([*(f"ℹ️ {note}" for note in notes), summary])


STORY_LABEL_WIDTH = 120  # px of the strip that names each row's epoch


def story_image(frames):
    """One picture of the fixed noise across training: a row per frame (8 flowers, shown x2), oldest on top, each
    named by its epoch on the left, so the eye reads the generator learning downwards."""
    import numpy as np
    from PIL import Image, ImageDraw

    rows = [np.concatenate(images[:8], axis=1) for _, images in frames]
    side = rows[0].shape[0]
    canvas = Image.new("RGB", (STORY_LABEL_WIDTH + rows[0].shape[1] * 2, side * 2 * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, ((epoch, _), row) in enumerate(zip(frames, rows)):
        canvas.paste(Image.fromarray(row).resize((row.shape[1] * 2, side * 2)), (STORY_LABEL_WIDTH, i * side * 2))
        draw.text((8, i * side * 2 + side - 8), f"after {epoch} epochs", fill="black")
    return canvas


def wasserstein_figure(history: list[dict]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3), layout="constrained")
    ax = fig.subplots()
    epochs = [h["epoch"] + 1 for h in history]
    ax.plot(epochs, [h.get("critic_wasserstein", float("nan")) for h in history], label="training batches")
    ax.plot(epochs, [-h.get("valid_loss", float("nan")) for h in history], label="held-out flowers")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean critic(real) − mean critic(fake)")
    ax.set_title("The critic's Wasserstein estimate (falls as the fakes improve)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def transposed_conv(size=3, kernel=3, stride=2, padding=1, seed=0):
    """The /transposed_conv endpoint: a small random input, a kernel of ones, and ConvTranspose2d's output drawn,
    with the formula for its size."""
    import numpy as np
    import torch
    from matplotlib.figure import Figure

    notes: list[str] = []
    try:
        n = int(checked_number(size, "input size", 2, 5, notes))
        k = int(checked_number(kernel, "kernel", 1, 5, notes))
        s = int(checked_number(stride, "stride", 1, 3, notes))
        p = int(checked_number(padding, "padding", 0, 2, notes))
        seed = seed_from(seed, notes)
    except InvalidSetting as err:
        return None, f"⚠️ {err}"
    out_side = (n - 1) * s - 2 * p + k
    if out_side < 1:
        return None, f"⚠️ With padding {p} the output would have {out_side} pixels per side: lower the padding."
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.integers(1, 10, (1, 1, n, n)).astype(np.float32))
    w = torch.ones(1, 1, k, k)
    y = torch.nn.functional.conv_transpose2d(x, w, stride=s, padding=p)[0, 0].numpy()
    fig = Figure(figsize=(7, 3), layout="constrained")
    axes = fig.subplots(1, 3, width_ratios=[n, k, out_side])
    for ax, grid, title in ((axes[0], x[0, 0].numpy(), f"input {n}×{n}"), (axes[1], w[0, 0].numpy(), f"kernel {k}×{k} (ones)"),
                            (axes[2], y, f"output {out_side}×{out_side}")):
        ax.imshow(grid, cmap="Blues", vmin=0, vmax=max(1.0, float(y.max())))
        for (i, j), value in np.ndenumerate(grid):
            ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(title, fontsize=9)
    text = (f"Each input pixel stamps the kernel, scaled by its value, onto the output, {s} pixel{'s' if s > 1 else ''} "
            f"further along for each step in the input; overlapping stamps add up. Output side = (n − 1)·stride − "
            f"2·padding + kernel = ({n} − 1)·{s} − 2·{p} + {k} = **{out_side}**."
            + (" Kernel not divisible by the stride: the overlaps are uneven, the checkerboard a generator must learn "
               "to hide." if k % s else ""))
    return fig, "\n\n".join([*(f"ℹ️ {note}" for note in notes), text])


# --- pure handlers: CycleGAN -----------------------------------------------------------------------------------
def camvid_samples() -> list[str]:
    """A few held-out CamVid frames (drive 0006R0 by day, the last dusk frames) where the data root has them."""
    from dl_core.gan.data import camvid_domains

    root = data_path("segmentation", "camvid")
    if not root.is_dir():
        return []
    held_out = camvid_domains(root, heldout_dusk=16)
    return [str(p) for p in held_out["test_a"][::40][:3] + held_out["test_b"][::8][:2]]


def translate(photo, direction=DAY_TO_DUSK):
    """The /day_dusk endpoint: the photo translated, translated back (the cycle), the cycle error as a heat map,
    and notes."""
    import numpy as np
    import torch
    from PIL import Image

    from dl_core.gan.data import to_uint8, to_unit
    from dl_core.images import BadImage, load_rgb

    if direction not in (DAY_TO_DUSK, DUSK_TO_DAY):
        return None, None, None, f"⚠️ *direction* must be '{DAY_TO_DUSK}' or '{DUSK_TO_DAY}', not {str(direction)[:40]!r}."
    try:
        loaded = load_rgb(photo, max_side=MAX_PHOTO_SIDE)
        model = CYCLE[CYCLE_NAME]
        generators = model.get()
    except BadImage as err:
        return None, None, None, f"⚠️ {err}"
    except ModelUnavailable as err:
        return None, None, None, f"⚠️ {err}"
    notes = list(loaded.notes) + ([model.note] if model.note else [])
    image = loaded.image
    width, height = image.width // 4 * 4, image.height // 4 * 4  # load_rgb guarantees at least 16 x 16
    image = image.crop((0, 0, width, height))
    forward, backward = ((generators.a_to_b, generators.b_to_a) if direction == DAY_TO_DUSK
                         else (generators.b_to_a, generators.a_to_b))
    x = to_unit(torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1))[None]
    started = time.perf_counter()
    with torch.inference_mode():
        fake = forward(x).clamp(-1, 1)
        back = backward(fake).clamp(-1, 1)
    ms = (time.perf_counter() - started) * 1000
    error = ((back - x).abs().mean(1)[0] / 2).numpy()  # 0-1 scale
    from matplotlib import colormaps

    heat = Image.fromarray((colormaps["magma"](np.clip(error / 0.25, 0, 1))[..., :3] * 255).astype(np.uint8))

    def to_pil(t):
        return Image.fromarray(to_uint8(t[0]).permute(1, 2, 0).numpy())

    text = (f"{direction}: {width}×{height} px, both generators in {ms:.0f} ms. The cycle error is |reconstruction − "
            f"photo|, mean **{error.mean():.3f}** on a 0–1 scale (bright = up to 0.25): the cycle loss trained it down; "
            "where it stays high, the translation threw away something it could not invent back.")
    notes += [note for note in (compile_note(forward), compile_note(backward)) if note][:1]
    return to_pil(fake), to_pil(back), heat, "\n\n".join([*(f"ℹ️ {note}" for note in notes), text])


def cycle_summary() -> str:
    model = CYCLE[CYCLE_NAME]
    if model.source is None:
        return ""
    scores = folder_metrics(model.source.location).get("scores", {}).get("a_to_b")
    if not scores:
        return ""
    return (f"**These weights** on held-out frames: FD-Lite0 to the dusk frames **{scores['fd_translated']:.1f}** after "
            f"translation vs {scores['fd_untranslated']:.1f} before ({scores['fd_translated'] / scores['fd_untranslated']:.2f}×); "
            f"cycle error {scores['cycle_l1']:.3f}."
            + (f" Real dusk frames from the training stretch of the drive score {scores['fd_floor']:.1f}: the floor."
               if "fd_floor" in scores else ""))


def translate_endpoint(photo, direction=DAY_TO_DUSK):
    return (*translate(photo, direction), cycle_summary())


# --- layout and wiring ---------------------------------------------------------------------------------------------
def build() -> None:
    networks = list(WGAN_LABELS)
    with gr.Row():
        with gr.Column(scale=3):
            gr.Markdown("### WGAN: flowers from noise")
            with gr.Row():
                seed = gr.Textbox(value="0", label="seed (any number or text)", elem_id="gan-seed", max_lines=1)
                network = RawRadio(networks, value=DEFAULT_WGAN, label="critic kept Lipschitz by", elem_id="gan-network")
                with gr.Column(min_width=160):
                    generate = gr.Button("Generate", variant="primary", elem_id="gan-generate")
                    another = gr.Button("New seed", elem_id="gan-new-seed")
            grid = gr.Image(label="16 generated flowers (64 px each, shown ×2)", type="pil", interactive=False,
                            elem_id="gan-grid", height=520)
            grid_notes = gr.Markdown(elem_id="gan-grid-notes")
            with gr.Accordion("The same noise as the generator learnt, and the critic's estimate", open=True):
                story_gallery = gr.Image(label="the same 8 noise vectors after each stretch of training", type="pil",
                                         interactive=False, elem_id="gan-story")
                story_plot = gr.Plot(show_label=False)
                story_notes = gr.Markdown(elem_id="gan-story-notes")
            with gr.Accordion("A walk through noise space", open=False):
                with gr.Row():
                    seed_a = RawNumber(value=0, label="from seed", precision=0)
                    seed_b = RawNumber(value=1, label="to seed", precision=0)
                    frames = RawSlider(2, MAX_WALK_FRAMES, value=10, step=1, label="frames")
                    walk_button = gr.Button("Walk", elem_id="gan-walk-button")
                walk = gr.Image(label="latent walk", type="pil", interactive=False, elem_id="gan-walk")
                walk_notes = gr.Markdown()
            with gr.Accordion("Transposed convolution, drawn", open=False):
                with gr.Row():
                    size = RawSlider(2, 5, value=3, step=1, label="input size")
                    kernel = RawSlider(1, 5, value=3, step=1, label="kernel")
                    stride = RawSlider(1, 3, value=2, step=1, label="stride")
                    padding = RawSlider(0, 2, value=1, step=1, label="padding")
                    deconv_button = gr.Button("Draw", elem_id="gan-deconv-button")
                deconv_plot = gr.Plot(show_label=False)
                deconv_notes = gr.Markdown(elem_id="gan-deconv-notes")
            gr.Markdown("### CycleGAN: day ⟷ dusk")
            with gr.Row():
                photo = ImageFile(type="filepath", label="Street photo", sources=["upload", "clipboard"],
                                  elem_id="gan-photo", height=260)
                with gr.Column(min_width=200):
                    direction = RawRadio([DAY_TO_DUSK, DUSK_TO_DAY], value=DAY_TO_DUSK, label="direction",
                                         elem_id="gan-direction")
                    translate_button = gr.Button("Translate", variant="primary", elem_id="gan-translate")
            samples = camvid_samples()
            if samples:
                gr.Examples([[p] for p in samples], inputs=[photo], cache_examples=False, api_visibility="private",
                            label="held-out CamVid frames (never trained on)")
            gr.Examples([[p] for p in bundled_photos()], inputs=[photo], cache_examples=False, api_visibility="private",
                        label="Sample photos (see samples/README.md)")
            with gr.Row():
                fake = gr.Image(label="translated", type="pil", interactive=False, elem_id="gan-fake", height=240)
                back = gr.Image(label="translated back (the cycle)", type="pil", interactive=False, elem_id="gan-back",
                                height=240)
                heat = gr.Image(label="cycle error", type="pil", interactive=False, elem_id="gan-heat", height=240)
            cycle_notes = gr.Markdown(elem_id="gan-cycle-notes")
            cycle_about = gr.Markdown(elem_id="gan-cycle-about")
        with gr.Column(scale=2, min_width=280):
            gr.Markdown(EXPLANATION, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                       {"left": "$", "right": "$", "display": False}])

    generate.click(flowers, [seed, network], [grid, grid_notes], api_name="flowers", concurrency_id="cpu").then(
        training_story, network, [story_gallery, story_plot, story_notes], api_visibility="private")
    another.click(new_seed, None, seed, api_visibility="private").then(
        flowers, [seed, network], [grid, grid_notes], api_visibility="private", concurrency_id="cpu")
    network.change(training_story, network, [story_gallery, story_plot, story_notes], api_visibility="private")
    network.change(flowers, [seed, network], [grid, grid_notes], api_visibility="private", concurrency_id="cpu")
    walk_button.click(latent_walk, [seed_a, seed_b, frames, network], [walk, walk_notes], api_name="latent_walk",
                      concurrency_id="cpu")
    deconv_button.click(transposed_conv, [size, kernel, stride, padding], [deconv_plot, deconv_notes],
                        api_name="transposed_conv")
    translate_button.click(translate_endpoint, [photo, direction], [fake, back, heat, cycle_notes, cycle_about],
                           api_name="day_dusk", concurrency_id="cpu")
    photo.change(translate_endpoint, [photo, direction], [fake, back, heat, cycle_notes, cycle_about],
                 api_visibility="private", concurrency_id="cpu", trigger_mode="always_last")


if __name__ == "__main__":
    import sys

    from demos.common import launch_alone

    launch_alone(sys.modules[__name__])
