import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou, nms

from dl_core.detection.model import (
    SSD, SSDConfig, centres_to_corners, corners_to_centres, decode_boxes, focal_loss, make_anchors, match_anchors,
    ssd_loss,
)


def test_iou_against_hand_computed_cases():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [2.0, 2.0, 3.0, 3.0], [0.0, 0.0, 1.0, 2.0]])
    # overlap 1 / union 7; identical; touching corners only; half contained (2 / 4)
    assert box_iou(a, b)[0].tolist() == pytest.approx([1 / 7, 1.0, 0.0, 0.5])


def test_anchor_counts_and_coordinates_match_the_lesson():
    cfg = SSDConfig(classes=["x"])
    anchors, cells = make_anchors(cfg)
    assert anchors.shape == (189, 4) and cfg.anchors_per_cell == 9  # (16 + 4 + 1) cells x 9
    first = anchors[:9]  # the 4x4 grid's top-left cell
    assert first[:, :2].tolist() == [[0.125, 0.125]] * 9
    assert first[0, 2:].tolist() == pytest.approx([0.75 * 0.25, 0.75 * 0.25])  # zoom 0.75, ratio 1:1
    assert first[1, 2:].tolist() == pytest.approx([0.75 * 0.25, 0.75 * 0.125])  # ratio (1, 0.5)
    centres_4x4 = sorted({round(x, 3) for x in anchors[:144, 0].tolist()})
    assert centres_4x4 == [0.125, 0.375, 0.625, 0.875]
    assert anchors[144, :2].tolist() == [0.25, 0.25] and anchors[-1, :2].tolist() == [0.5, 0.5]
    assert cells[0].item() == 0.25 and cells[-1].item() == 1.0


def test_corner_centre_round_trip():
    boxes = torch.tensor([[0.1, 0.2, 0.5, 0.9], [0.0, 0.0, 1.0, 1.0]])
    assert torch.allclose(centres_to_corners(corners_to_centres(boxes)), boxes)


def test_zero_activations_decode_to_the_anchors_and_tanh_bounds_the_moves():
    anchors, cells = make_anchors(SSDConfig(classes=["x"]))
    assert torch.allclose(decode_boxes(torch.zeros(189, 4), anchors, cells), centres_to_corners(anchors))
    huge = corners_to_centres(decode_boxes(torch.full((189, 4), 50.0), anchors, cells))
    assert torch.allclose(huge[:, :2], anchors[:, :2] + cells / 2)  # centre moves at most half a cell
    assert torch.allclose(huge[:, 2:], anchors[:, 2:] * 1.5)  # size at most x1.5


def test_matching_uses_threshold_and_forces_each_boxes_best_anchor():
    anchors = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.5, 1.0], [0.4, 0.4, 0.6, 0.6]])
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.45, 0.45, 0.55, 0.55]])  # the second box is small
    matched, iou = match_anchors(gt, anchors, threshold=0.4)
    assert matched.tolist() == [0, -1, -1, 1]  # anchor 3's IoU with box 1 is only 0.25: forced anyway
    assert iou[3].item() == pytest.approx(1.99)
    empty, _ = match_anchors(torch.zeros(0, 4), anchors, 0.4)
    assert empty.tolist() == [-1, -1, -1, -1]


def test_focal_loss_is_scaled_bce_at_gamma_zero_alpha_half():
    torch.manual_seed(0)
    logits, targets = torch.randn(50, 7), (torch.rand(50, 7) > 0.8).float()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum")
    assert focal_loss(logits, targets, alpha=0.5, gamma=0.0) == pytest.approx(0.5 * bce.item(), rel=1e-5)
    # gamma > 0 down-weights easy examples: confident, right predictions lose almost all their loss
    easy = torch.tensor([[8.0]]), torch.tensor([[1.0]])
    assert focal_loss(*easy, alpha=0.5, gamma=2.0) < 1e-6 * F.binary_cross_entropy_with_logits(*easy, reduction="sum")


def test_nms_in_detect_agrees_with_torchvision():
    torch.manual_seed(1)
    model = SSD(SSDConfig(classes=["a", "b"])).eval()
    images = torch.rand(1, 3, 224, 224)
    raw = model.detect(images, [(224, 224)], score_threshold=0.0, nms=False, max_detections=1000)[0]
    kept = model.detect(images, [(224, 224)], score_threshold=0.0, iou_threshold=0.5, max_detections=1000)[0]
    assert len(raw.boxes) == 189 and len(kept.boxes) < 189
    expected = set()
    for c in raw.labels.unique():  # per-class NMS = torchvision's nms on each class separately
        idx = (raw.labels == c).nonzero().flatten()
        expected |= set(raw.anchor_index[idx[nms(raw.boxes[idx], raw.scores[idx], 0.5)]].tolist())
    assert set(kept.anchor_index.tolist()) == expected


def _synthetic_batch(n: int, size: int, seed: int = 0):
    """Bright squares (40-67% of the side) on dark noise: class 0 = red square, class 1 = blue square."""
    g = torch.Generator().manual_seed(seed)
    images, targets = torch.rand(n, 3, size, size, generator=g) * 0.2, []
    for i in range(n):
        x, y = torch.randint(0, size // 3, (2,), generator=g).tolist()
        s = int(torch.randint(size * 2 // 5, size * 2 // 3, (1,), generator=g))
        c = i % 2
        images[i, 0 if c == 0 else 2, y : y + s, x : x + s] = 1.0
        targets.append({"boxes": torch.tensor([[x, y, x + s, y + s]]) / size, "labels": torch.tensor([c])})
    return images, targets


def test_ssd_overfits_a_few_generated_images():
    """Loss, matching, box decoding and detect() together: 30 steps on 4 images must find every square.

    Small to stay a unit test: 128 px (a 4x4 backbone map, so the head's grids are 2x2 and 1x1) and no dropout.
    A broken loss, matching or decoding leaves boxes off target or of the wrong colour."""
    torch.manual_seed(0)
    size = 128
    model = SSD(SSDConfig(classes=["red", "blue"], image_size=size, grids=[2, 1], feature_dropout=0.0, head_dropout=0.0))
    images, targets = _synthetic_batch(4, size)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        model.train()
        loss = ssd_loss(model(images), targets, model)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2, losses
    # 30 steps are too few for BatchNorm's running averages (the backbone's momentum is TF's 0.01) to catch
    # up: recalibrate them exactly on the batch, as one does after a short fine-tune, then evaluate.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None  # cumulative average
        model(images)
    model.eval()
    detections = model.detect(images, [(size, size)] * len(images), score_threshold=0.3)
    ious, right_class = [], 0
    for det, target in zip(detections, targets):
        assert len(det.boxes), "every image should have a confident detection"
        right_class += int(det.labels[0] == target["labels"][0])
        ious.append(float(box_iou(det.boxes[:1] / size, target["boxes"])[0, 0]))
    assert right_class == len(images)  # every top detection has the right colour
    assert sum(iou > 0.5 for iou in ious) >= 3 and sum(ious) / len(ious) > 0.5, ious


def test_round_trip_through_a_weight_folder(tmp_path):
    from dl_core.hub import load_model, save_model

    torch.manual_seed(0)
    model = SSD(SSDConfig(classes=["raccoon", "chair"])).eval()
    folder = save_model(model, tmp_path / "w", card="# card\n", fp16=False)
    loaded = load_model(SSD, folder)
    assert loaded.config == model.config
    images = torch.rand(2, 3, 224, 224)
    a, b = model(images), loaded(images)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not any(k.startswith(("anchors", "cell_sizes", "mean", "std")) for k in loaded.state_dict())


def test_the_lessons_resnet34_backbone_fits_the_same_heads():
    """Online, --backbone resnet34 loads torchvision's ImageNet weights; offline we check the architecture."""
    model = SSD(SSDConfig(classes=["a", "b", "c"], backbone="resnet34")).eval()
    out = model(torch.rand(1, 3, 224, 224))
    assert out["class_logits"].shape == (1, 189, 3) and out["largest"].shape == (1, 7)
    with pytest.raises(ValueError, match="unknown backbone"):
        SSD(SSDConfig(classes=["a"], backbone="vgg99"))


def test_resnet34_weights_are_read_as_tensors_only_with_the_hash_checked(monkeypatch):
    """No download: the fake 'download' returns a ResNet-34's own state and records how it was asked for."""
    from torchvision.models import ResNet34_Weights, resnet34

    calls = []

    def fake_download(url, *args, **kwargs):
        calls.append((url, kwargs))
        torch.manual_seed(3)
        return resnet34().state_dict()

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    model = SSD(SSDConfig(classes=["a"], backbone="resnet34"))
    model.load_backbone_weights()
    (url, kwargs), = calls
    assert url == ResNet34_Weights.IMAGENET1K_V1.url
    assert kwargs["weights_only"] is True and kwargs["check_hash"] is True
    torch.manual_seed(3)
    expected = resnet34().conv1.weight
    assert torch.equal(model.backbone[0].weight, expected)  # the trunk holds the downloaded tensors


def test_the_two_head_dropouts_are_distinct_config_fields():
    """The bundled config.json predates feature_dropout: it must still mean 0.25 on the backbone map, 0.4 in the head."""
    import json

    from dl_core.paths import WEIGHTS_DIR

    config = json.loads((WEIGHTS_DIR / "detection" / "config.json").read_text())
    assert "feature_dropout" not in config
    model = SSD(config)
    assert model.feature_dropout.p == 0.25
    assert {m.p for m in model.grid_convs.modules() if isinstance(m, torch.nn.Dropout)} == {0.4}
    assert {m.p for m in model.largest_head if isinstance(m, torch.nn.Dropout)} == {0.5}
    custom = SSD(SSDConfig(classes=["a"], feature_dropout=0.1, head_dropout=0.2, largest_dropout=0.3))
    assert custom.feature_dropout.p == 0.1 and custom.reduce[-1].p == 0.2 and custom.largest_head[3].p == 0.3


def test_grids_that_do_not_fit_the_image_size_are_refused():
    assert SSDConfig(classes=["a"]).head_grids() == [4, 2, 1]
    assert SSDConfig(classes=["a"], image_size=128, grids=[2, 1]).head_grids() == [2, 1]
    with pytest.raises(ValueError, match=r"use \[2, 1, 1\]"):
        SSD(SSDConfig(classes=["a"], image_size=128))
