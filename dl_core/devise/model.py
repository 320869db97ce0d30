"""Lesson 11's DeViSE head: image features regressed onto word vectors, trained with a cosine loss.

Frome et al., "DeViSE: A Deep Visual-Semantic Embedding Model" (NIPS 2013), as the lesson's `devise.ipynb` builds
it: instead of predicting one of 1,000 classes, the network predicts the word vector of the image's label,
so that a wrong answer can still be close ("a dog that looks like a wolf" lands near "wolf"), labels it never saw
can be read off (the nearest word), and images can be searched by words.

The backbone is frozen and its features precomputed (the lesson's `precompute=True`), so the trainable part is the
head alone, fastai v0.7's ConvnetBuilder head with one extra layer (`xtra_fc=[1024], ps=[0.2, 0.2]`, `is_reg=True`):

    pooled EfficientNet-Lite0 features (B, 1280)   (ReLU6 activations averaged over space: all >= 0)
      -> BatchNorm1d -> Dropout(p) -> Linear(1280, 1024) -> ReLU       (B, 1024)
      -> BatchNorm1d -> Dropout(p) -> Linear(1024, 50)                 (B, 50) a point in GloVe's 50-d space

The first BatchNorm standardises the features (all non-negative, with per-channel scales that vary a lot), which the
lesson's head also does; the output has no activation (a regression) and no normalisation, since the cosine loss
ignores its length: `embed` gives the unit vector used for search. (The lesson concatenated average and max pooling
of ResNet-50's 2,048 channels and predicted 300-d fastText vectors; here it is the average-pooled 1,280 channels of
EfficientNet-Lite0, the backbone the app already ships, and GloVe's 50 dimensions.)

The loss is the lesson's `cos_loss`: 1 - cos(prediction, word vector), averaged over the batch. Mean squared error
would also push the length towards the target's, which carries no meaning here; only the direction is searched.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn


@dataclass
class DeviseConfig:
    in_features: int = 1280  # EfficientNet-Lite0's pooled features
    hidden: int = 1024  # the lesson's xtra_fc=[1024]
    out_features: int = 50  # GloVe 6B 50-d
    dropout: float = 0.2  # before each Linear, the lesson's ps=[0.2, 0.2]
    image_size: int = 160  # the side images are resized to before the backbone: features depend on it
    trained_words: list[str] = field(default_factory=list)  # the training labels' names (the seen classes)
    seen_penalty: float = 0.0  # subtracted from a trained word's cosine when ranking (calibration.py)

    def __post_init__(self):
        if min(self.in_features, self.hidden, self.out_features) < 1:
            raise ValueError(f"layer sizes must be positive: {self}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")
        if not 0 <= self.seen_penalty <= 2:  # cosines span 2
            raise ValueError(f"seen_penalty must be in [0, 2], not {self.seen_penalty}")
        self.trained_words = [str(word) for word in self.trained_words]


class DeviseHead(nn.Module, PyTorchModelHubMixin):
    """Precomputed image features (B, in_features) -> predicted word vectors (B, out_features), not normalised."""

    def __init__(self, config: DeviseConfig | dict | None = None):
        super().__init__()
        config = DeviseConfig(**config) if isinstance(config, dict) else (config or DeviseConfig())  # a dict: from config.json
        self.config = config
        self.hidden = nn.Sequential(nn.BatchNorm1d(config.in_features), nn.Dropout(config.dropout),
                                    nn.Linear(config.in_features, config.hidden), nn.ReLU(inplace=True))
        self.out = nn.Sequential(nn.BatchNorm1d(config.hidden), nn.Dropout(config.dropout),
                                 nn.Linear(config.hidden, config.out_features))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(features))  # (B, in) -> (B, hidden) -> (B, out)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """Unit vectors (B, out_features) in word space, what search compares by cosine (call .eval() first)."""
        return F.normalize(self(features), dim=-1)


def seen_bias(names: list[str], trained_words: list[str], penalty: float) -> torch.Tensor:
    """(len(names),) float: -penalty for the names that were training labels, 0 for the rest. Added to the cosines
    before ranking, it offsets the head's pull towards the few points it was taught (calibration.py)."""
    trained = set(trained_words)
    return torch.tensor([-penalty if name in trained else 0.0 for name in names])


def cosine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean(1 - cos(pred, target)) over the batch: 0 when every prediction points along its word vector, 1 when
    orthogonal, 2 when opposite. pred and target (B, d); the target need not be unit length."""
    return (1 - F.cosine_similarity(pred, target, dim=-1)).mean()


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
