"""Object-detection data: Pascal VOC XML, COCO JSON (and the lesson's Pascal JSON, which is COCO-style),
plus a box-aware augmentation pipeline built on torchvision.transforms.v2 and tv_tensors.

Every reader returns a list of `Annotated(image_path, boxes, labels)` with boxes in pixels (x1, y1, x2, y2)
and labels as class *names*, so data sets with different category ids can be mixed and matched by name.
"""
from __future__ import annotations

import csv
import json
import random
import statistics
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset

from dl_core.images import load_rgb

# The bundled model's classes: raccoon's one, then coco_tiny's six (matched by name, so the sets can be mixed).
COCO_TINY_CLASSES = ["chair", "couch", "tv", "remote", "book", "vase"]
CLASSES = ["raccoon", *COCO_TINY_CLASSES]


@dataclass
class Annotated:
    image_path: Path
    boxes: list[list[float]]  # pixels, x1 y1 x2 y2
    labels: list[str]

    def targets(self, class_index: dict[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel boxes (G, 4) and class ids (G,) of the objects whose class is in `class_index` (others dropped)."""
        kept = [(b, class_index[n]) for b, n in zip(self.boxes, self.labels) if n in class_index]
        boxes = torch.tensor([b for b, _ in kept], dtype=torch.float32).reshape(-1, 4)
        return boxes, torch.tensor([c for _, c in kept], dtype=torch.long)


def read_voc_xml(xml_path: str | Path, image_path: str | Path | None = None) -> Annotated:
    """One Pascal VOC annotation file; the image defaults to <filename> beside the XML."""
    xml_path = Path(xml_path)
    root = ET.parse(xml_path).getroot()
    boxes, labels = [], []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is not None:
            boxes.append([float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
            labels.append(obj.findtext("name", "").strip())
    filename = root.findtext("filename") or xml_path.with_suffix(".jpg").name
    return Annotated(Path(image_path) if image_path else xml_path.parent / filename, boxes, labels)


def read_voc_folder(folder: str | Path) -> list[Annotated]:
    """A folder with `annotations/*.xml` (Pascal VOC) and `images/` (or JPEGImages/, or beside the XML)."""
    folder = Path(folder)
    xml_dir = next((d for d in (folder / "annotations", folder / "Annotations") if d.is_dir()), folder)
    image_dirs = [folder / "images", folder / "JPEGImages", xml_dir]
    items = []
    for xml_path in sorted(xml_dir.glob("*.xml")):
        item = read_voc_xml(xml_path)
        name = item.image_path.name
        item.image_path = next((d / name for d in image_dirs if (d / name).is_file()), image_dirs[0] / name)
        items.append(item)
    if not items:
        raise FileNotFoundError(f"no Pascal VOC .xml annotations found in {xml_dir}")
    return items


def read_coco_json(json_path: str | Path, image_dir: str | Path | None = None) -> list[Annotated]:
    """COCO detection JSON (bbox = x, y, w, h in pixels). Also reads the lesson's pascal_train2007.json.

    Images are looked up in `image_dir`, else in a folder beside the JSON named like it (train.json -> train/),
    else `images/`, else beside the JSON.
    """
    json_path = Path(json_path)
    data = json.loads(json_path.read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    candidates = [Path(image_dir)] if image_dir else [json_path.with_suffix(""), json_path.parent / "images",
                                                      json_path.parent / "JPEGImages", json_path.parent]
    directory = next((d for d in candidates if d.is_dir()), candidates[0])
    by_image: dict[int, Annotated] = {
        img["id"]: Annotated(directory / img["file_name"], [], []) for img in data["images"]
    }
    for ann in data["annotations"]:
        if ann.get("ignore") or ann.get("iscrowd"):
            continue
        x, y, w, h = ann["bbox"]
        item = by_image[ann["image_id"]]
        item.boxes.append([x, y, x + w, y + h])
        item.labels.append(names[ann["category_id"]])
    return list(by_image.values())


def read_detection_data(path: str | Path) -> list[Annotated]:
    """A VOC folder (annotations/*.xml), a COCO/Pascal JSON file, or a folder holding exactly one such JSON."""
    path = Path(path)
    if path.suffix == ".json":
        return read_coco_json(path)
    if path.is_dir():
        if any((path / d).is_dir() for d in ("annotations", "Annotations")) or any(path.glob("*.xml")):
            return read_voc_folder(path)
        jsons = sorted(path.glob("*.json"))
        if len(jsons) == 1:
            return read_coco_json(jsons[0])
    raise FileNotFoundError(f"{path}: expected a folder with images/ + annotations/ (VOC XML) or a COCO JSON file")


def read_split_csv(csv_path: str | Path) -> set[str]:
    """File names listed in a split CSV with a `filename` column (raccoon's train_labels.csv / test_labels.csv)."""
    with open(csv_path, newline="") as f:
        return {row["filename"] for row in csv.DictReader(f)}


def split_items(items: Sequence[Annotated], n_valid: int, seed: int = 42) -> tuple[list[Annotated], list[Annotated]]:
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    valid = set(order[:n_valid])
    return [it for i, it in enumerate(items) if i not in valid], [it for i, it in enumerate(items) if i in valid]


def raccoon_split(folder: str | Path) -> tuple[list[Annotated], list[Annotated]]:
    """raccoon's photos as (train, test): the test photos are those listed in its test_labels.csv."""
    items = read_voc_folder(folder)
    test_names = read_split_csv(Path(folder) / "test_labels.csv")
    return [it for it in items if it.image_path.name not in test_names], [it for it in items if it.image_path.name in test_names]


def load_voc2007(root: str | Path) -> list[Annotated]:
    """Pascal VOC 2007 trainval through torchvision (downloads ~900 MB when online), as Annotated items."""
    from torchvision.datasets import VOCDetection

    dataset = VOCDetection(str(root), year="2007", image_set="trainval", download=True)
    return [read_voc_xml(xml, image) for image, xml in zip(dataset.images, dataset.targets)]


def training_data(raccoon: str | Path, coco: str | Path, coco_valid: int, seed: int, voc2007: str | Path | None = None
                  ) -> tuple[dict[str, list[Annotated]], dict[str, list[Annotated]]]:
    """The bundled model's data: ({source: training items}, {evaluation set name: items}).

    raccoon's test_labels.csv photos and a seeded `coco_valid` images of coco_tiny are held out; the rest of
    both (and all of VOC 2007 trainval, if given) is trained on."""
    raccoon_train, raccoon_test = raccoon_split(raccoon)
    coco_train, coco_heldout = split_items(read_coco_json(Path(coco) / "train.json"), coco_valid, seed)
    train = {"raccoon": raccoon_train, "coco_tiny": coco_train}
    if voc2007:
        train["voc2007"] = load_voc2007(voc2007)
    return train, {"raccoon_test": raccoon_test, "coco_tiny_heldout": coco_heldout}


def describe_data(train: dict[str, list[Annotated]], heldout: dict[str, list[Annotated]]) -> dict:
    """What a model card says about `training_data`'s sets: image counts, and how small coco_tiny's objects are."""
    coco_tiny = train.get("coco_tiny", []) + heldout.get("coco_tiny_heldout", [])
    return {"train_images": {name: len(items) for name, items in train.items()},
            "heldout_images": {name: len(items) for name, items in heldout.items()},
            **({"coco_tiny_sizes": object_sizes(coco_tiny)} if coco_tiny else {})}


def evaluation_items(path: str | Path, split: str = "all", n_heldout: int = 40, seed: int = 42) -> list[Annotated]:
    """A data set read by `read_detection_data`, or one split of it: "test" keeps the files of the
    test_labels.csv beside it (raccoon's); "heldout" the seeded part `split_items` held out from training."""
    path = Path(path)
    items = read_detection_data(path)
    if split == "test":
        names = read_split_csv((path if path.is_dir() else path.parent) / "test_labels.csv")
        return [it for it in items if it.image_path.name in names]
    if split == "heldout":
        return split_items(items, n_heldout, seed)[1]
    if split != "all":
        raise ValueError(f"unknown split {split!r}: use 'all', 'test' or 'heldout'")
    return items


def object_sizes(items: Sequence[Annotated]) -> dict:
    """Median longer side of the annotated objects, in pixels and as a fraction of their image's longer side,
    and the median image side: how small the objects are next to the anchors."""
    from PIL import Image

    sides, fractions, image_sides = [], [], []
    for item in items:
        with Image.open(item.image_path) as image:
            image_side = max(image.size)
        image_sides.append(image_side)
        for x1, y1, x2, y2 in item.boxes:
            sides.append(max(x2 - x1, y2 - y1))
            fractions.append(sides[-1] / image_side)
    return {"median_object_side_px": round(statistics.median(sides), 2),
            "median_object_side_fraction": round(statistics.median(fractions), 4),
            "median_image_side_px": statistics.median(image_sides), "objects": len(sides)}


# What detection_transforms(train=True) does, as a model card says it.
AUGMENTATION = "photometric distortion, zoom-out, IoU crop, flip (boxes follow)"


def detection_transforms(size: int, train: bool):
    """Box-aware transforms (a torchvision v2.Compose): every geometric change moves the boxes too (the lesson's
    tfm_y=TfmType.COORD). Images are squashed to size x size, not cropped (the lesson's CropType.NO), so objects at
    the edges survive.

    torchvision is imported where it is used, here and below: importing it imports torch._dynamo (about 4 s on
    2 cores), and the app's start-up reads this module's split lists before any model is needed."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    steps = []
    if train:
        steps += [
            v2.RandomPhotometricDistort(p=0.5),
            v2.RandomZoomOut(fill={tv_tensors.Image: (124, 116, 104), "others": 0}, side_range=(1.0, 2.0), p=0.3),
            v2.RandomIoUCrop(sampler_options=[0.3, 0.5, 0.7, 0.9, 1.0, 2.0]),  # 2.0 >= 1: sometimes no crop
            v2.RandomHorizontalFlip(),
        ]
    steps += [v2.Resize((size, size), antialias=True), v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=2),
              v2.ToDtype(torch.float32, scale=True)]
    return v2.Compose(steps)


class DetectionDataset(Dataset):
    """Items -> (image (3, S, S) in [0, 1], {"boxes": (G, 4) normalised corners, "labels": (G,) class ids}).

    Labels not in `classes` are dropped (so a 6-class COCO file can be scored by a 7-class model by name).
    """

    def __init__(self, items: Sequence[Annotated], classes: Sequence[str], size: int, train: bool):
        self.items, self.size = list(items), size
        self.class_index = {name: i for i, name in enumerate(classes)}
        self.transform = detection_transforms(size, train)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        from torchvision import tv_tensors
        from torchvision.transforms import v2

        item = self.items[i]
        image = load_rgb(item.image_path, max_side=10_000).image
        pixel_boxes, labels = item.targets(self.class_index)
        boxes = tv_tensors.BoundingBoxes(pixel_boxes, format="XYXY", canvas_size=(image.height, image.width))
        img, target = self.transform(tv_tensors.Image(v2.functional.pil_to_tensor(image)), {"boxes": boxes, "labels": labels})
        return img.as_subclass(torch.Tensor), {
            "boxes": target["boxes"].as_subclass(torch.Tensor) / self.size,
            "labels": target["labels"],
        }


def to_model_input(images: Sequence, size: int) -> torch.Tensor:
    """PIL RGB images -> (B, 3, size, size) floats in [0, 1], squashed like the training images."""
    from torchvision.transforms import v2

    resized = [v2.functional.pil_to_tensor(img.resize((size, size), resample=2)) for img in images]  # 2 = bilinear
    return torch.stack(resized).float() / 255


def collate_detection(batch):
    """-> ((images (B, 3, S, S),), [targets]): the Learner's (inputs, target) convention."""
    images = torch.stack([img for img, _ in batch])
    return (images,), [t for _, t in batch]
