"""train/detect.py end to end on a tiny generated data set, and the model card written from config + metrics."""
import json

import pytest
from PIL import Image

from dl_core.detection.card import facts_from_old_card, model_card
from dl_core.detection.model import SSDConfig

VOC_XML = """<annotation><filename>{name}</filename>
<object><name>raccoon</name><bndbox><xmin>8</xmin><ymin>10</ymin><xmax>50</xmax><ymax>60</ymax></bndbox></object>
</annotation>"""


@pytest.fixture
def tiny_data(tmp_path):
    """A raccoon-style VOC folder (4 photos, 1 in test_labels.csv) and a coco_tiny-style JSON (5 images)."""
    raccoon, coco = tmp_path / "raccoon", tmp_path / "coco_tiny"
    for folder in (raccoon / "annotations", raccoon / "images", coco / "train"):
        folder.mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (80, 70), (60 * i, 90, 120)).save(raccoon / "images" / f"r{i}.jpg")
        (raccoon / "annotations" / f"r{i}.xml").write_text(VOC_XML.format(name=f"r{i}.jpg"))
    (raccoon / "test_labels.csv").write_text("filename,width,height,class,xmin,ymin,xmax,ymax\nr3.jpg,80,70,raccoon,8,10,50,60\n")
    images = [{"id": i, "file_name": f"c{i}.jpg"} for i in range(5)]
    for image in images:
        Image.new("RGB", (64, 48), (30, 40 * image["id"], 50)).save(coco / "train" / image["file_name"])
    (coco / "train.json").write_text(json.dumps({
        "categories": [{"id": 62, "name": "chair"}], "images": images,
        "annotations": [{"image_id": i, "bbox": [4, 4, 20, 16], "category_id": 62} for i in range(5)]}))
    return raccoon, coco


def test_train_evaluate_and_card_commands(tiny_data, tmp_path, capsys):
    from train import detect

    raccoon, coco = tiny_data
    out = tmp_path / "weights" / "detection"
    detect.main(["train", "--raccoon", str(raccoon), "--coco", str(coco), "--coco-valid", "2", "--size", "64",
                 "--epochs", "1", "--bs", "4", "--workers", "0", "--checkpoint", "", "--out", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    facts = metrics["facts"]
    assert facts["data"]["train_images"] == {"raccoon": 3, "coco_tiny": 3}
    assert facts["data"]["heldout_images"] == {"raccoon_test": 1, "coco_tiny_heldout": 2}
    assert facts["args"]["coco_valid"] == 2 and facts["command"].startswith("python train/detect.py train --raccoon")
    assert json.loads((out / "config.json").read_text())["grids"] == [1, 1, 1]  # what a 64-px image's head makes
    card = (out / "README.md").read_text()
    assert facts["command"] in card and "27 anchors (grids 1×1, 1×1, 1×1" in card

    # evaluate reads the held-out split (2 images, seed 42) that training recorded
    capsys.readouterr()
    detect.main(["evaluate", "--weights", str(out), "--data", str(coco / "train.json"), "--split", "heldout"])
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["n"] == 2 and scores == metrics["focal"]["coco_tiny_heldout"]

    (out / "README.md").write_text("stale")
    detect.main(["card", "--weights", str(out)])
    assert (out / "README.md").read_text() == card  # the card is a function of config.json + metrics.json


def _facts(**args):
    recipe = dict(raccoon="../shared/data/detection/raccoon", coco="../shared/data/detection/coco_tiny", voc2007=None,
                  coco_valid=40, seed=42, epochs=2, bs=16, lr=2e-3, backbone_lr_mult=0.1, wd=0.01, clip=5.0,
                  compare_bce=False)
    recipe.update(args)
    return {"command": "python train/detect.py train --epochs 2", "args": recipe, "hardware": "CPU, 2 threads",
            "data": {"train_images": {"raccoon": 160, "coco_tiny": 160}, "heldout_images": {"raccoon_test": 40,
                     "coco_tiny_heldout": 40}},
            "evaluate": {"raccoon_test": "python train/detect.py evaluate --weights w --data r --split test"}}


def test_the_card_prints_the_configs_values_not_the_defaults():
    config = SSDConfig(classes=["raccoon", "chair"], backbone="resnet34", zooms=[1.0, 1.5], ratios=[[1.0, 1.0]],
                       focal_alpha=0.5, focal_gamma=1.0, match_iou=0.5)
    history = [{"epoch": e, "train_loss": 1.0, "valid_loss": 2.0, "seconds": 30.0} for e in range(2)]
    metrics = {"focal": {"raccoon_test": {"map50": 0.5, "map": 0.25, "n": 40}}, "history": history, "facts": _facts()}
    from dataclasses import asdict

    card = model_card(asdict(config), metrics)
    assert "42 anchors (grids 4×4, 2×2, 1×1 × zooms {1, 1.5} × width:height {1:1})" in card
    assert "α=0.5, γ=1" in card and "IoU ≥ 0.5" in card and "**resnet34**" in card and "ResNet-34" in card
    assert "EfficientNet" not in card and "Classes: raccoon, chair." in card
    assert "| raccoon_test | 40 | 0.500 | 0.250 |" in card and "python train/detect.py evaluate --weights w" in card
    assert "2 epochs, 1.0 minutes on CPU, 2 threads" in card and "Focal loss vs plain BCE" not in card


def test_an_old_card_gives_its_command_and_hardware(tmp_path):
    (tmp_path / "README.md").write_text("# old\n## Training\n```\npython train/detect.py train --compare-bce --out w\n```\n"
                                        "30 epochs, 14.4 minutes on CPU, 2 threads (2 cores visible); AdamW\n")
    from train.detect import _parse_train_command

    def parse(command):  # the data paths as if the data root had them, so that the evaluate commands are made
        args = _parse_train_command(command)
        args.raccoon, args.coco = args.raccoon or "raccoon", args.coco or "coco_tiny"
        return args

    facts = facts_from_old_card(tmp_path, parse, lambda args: {"seen": args.coco_valid})
    assert facts["command"] == "python train/detect.py train --compare-bce --out w"
    assert facts["hardware"] == "CPU, 2 threads (2 cores visible)" and facts["data"] == {"seen": 40}
    assert facts["args"]["compare_bce"] is True and facts["args"]["lr"] == 2e-3
    assert facts["evaluate"]["raccoon_test"].startswith("python train/detect.py evaluate --weights w ")
