"""Gatys et al. style transfer (lesson 13): optimise the pixels of an image so that its deep features match
a photo's (content) and its Gram matrices match a painting's (style).

    loss = StyleLoss(FeatureExtractor(), style, LossWeights())
    for step in optimise_pixels(loss, content, steps=200, report_every=10):
        show(step.image, step.content, step.style)        # a generator, so the app can stream it

Every step is a forward and backward pass through the feature network: that is why it takes seconds where
the trained network of lesson 14 (dl_core.style.model) takes milliseconds.

The lesson uses L-BFGS; we use Adam on the pixels (lr in pixel units), which gives an image at every step
for the live view, needs no closure, and reaches a recognisable result in ~100-200 steps at 256 px.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, NamedTuple

import torch

from dl_core.perceptual import LossTerms, StyleLoss


@dataclass
class PixelStep:
    step: int  # 1-based; step 0 is the starting image
    image: torch.Tensor  # (1, 3, H, W) in [0, 1], a detached copy
    content: float
    style: float
    total: float
    per_layer: dict[str, float] = field(default_factory=dict)


def smooth_noise(shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    """The lesson's start image: uniform noise, median-filtered (8x8) so it has no pixel-level static.

    Plain noise works too but converges slower ("it immediately started training really well").
    Here: noise at 1/8 resolution, upsampled bilinearly, which smooths the same way and is cheap."""
    b, c, h, w = shape
    coarse = torch.rand(b, c, max(1, h // 8), max(1, w // 8), generator=generator)
    fine = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return 0.25 + 0.5 * fine  # mid-grey-ish: far from saturation, where the gradient is alive


def optimise_pixels(
    loss: StyleLoss,
    content: torch.Tensor,
    steps: int = 200,
    lr: float = 0.02,
    start: str | torch.Tensor = "content",
    report_every: int = 10,
    seed: int = 0,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[PixelStep]:
    """Yield the starting image, then every `report_every` steps (and the last step) until `steps` or a stop.

    content: (1, 3, H, W) photo in [0, 1]. start: "content" (the photo itself: fastest), "noise" (smoothed
    noise, as in the lesson: slower, but shows the style being built from nothing) or an image of content's
    shape, e.g. a trained style network's output, which the optimisation then refines.
    """
    if isinstance(start, torch.Tensor):
        if start.shape != content.shape:
            raise ValueError(f"the start image is {tuple(start.shape)}, the photo {tuple(content.shape)}")
        image = start.detach().clone().clamp(0, 1).to(content.device)
    elif start == "content":
        image = content.clone()
    elif start == "noise":
        image = smooth_noise(tuple(content.shape), torch.Generator().manual_seed(seed)).to(content.device)
    else:
        raise ValueError("start must be 'content', 'noise' or an image")
    image.requires_grad_(True)
    optimiser = torch.optim.Adam([image], lr=lr)
    target = loss.content_targets(content)

    def snapshot(step: int, terms: LossTerms) -> PixelStep:
        return PixelStep(step, image.detach().clone(), float(terms.content), float(terms.style), float(terms.total.detach()),
                         terms.per_layer)

    # Grad mode is per thread, and a server may resume this generator on another thread each time: so no
    # `with no_grad()` may stay open across a `yield` (it would leave that thread without gradients for whatever
    # runs on it next), and every step says explicitly that it needs gradients.
    with torch.no_grad():
        first = snapshot(0, loss(image, target))
    yield first
    for step in range(1, steps + 1):
        with torch.enable_grad():
            optimiser.zero_grad(set_to_none=True)
            terms = loss(image, target)
            terms.total.backward()
            optimiser.step()
        with torch.no_grad():
            image.clamp_(0, 1)
        stopping = should_stop is not None and should_stop()
        if step % report_every == 0 or step == steps or stopping:
            yield snapshot(step, terms)  # losses of the image before this step's update, as Adam saw them
        if stopping:
            return


class Losses(NamedTuple):
    content: float
    style: float
    total: float


def run_pixels(loss: StyleLoss, content: torch.Tensor, steps: int, curve: list[Losses] | None = None,
               **kwargs) -> PixelStep:
    """Run optimise_pixels to the end and return the final step (for evaluation and tests).

    curve: a list to receive the losses after 0, 1, ..., `steps` updates (steps + 1 entries), e.g. to find how
    many steps of optimisation a trained network's one forward pass is worth."""
    last = None
    report_every = 1 if curve is not None else max(1, steps)
    for last in optimise_pixels(loss, content, steps=steps, report_every=report_every, **kwargs):
        if curve is not None and last.step > 0:  # step k reports the image after k - 1 updates
            curve.append(Losses(last.content, last.style, last.total))
    with torch.no_grad():  # the losses of the final image itself (a step reports the image it started from)
        terms = loss(last.image, loss.content_targets(content))
    if curve is not None:
        curve.append(Losses(float(terms.content), float(terms.style), float(terms.total)))
    return PixelStep(last.step, last.image, float(terms.content), float(terms.style), float(terms.total), terms.per_layer)
