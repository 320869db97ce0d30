"""Object-detection data: Pascal VOC XML, COCO JSON (and the lesson's Pascal JSON, which is COCO-style),
plus a box-aware augmentation pipeline built on torchvision.transforms.v2 and tv_tensors.

Every reader returns a list of `Annotated(image_path, boxes, labels)` with boxes in pixels (x1, y1, x2, y2)
and labels as class *names*, so data sets with different category ids can be mixed and matched by name.
"""
from __future__ import annotations

import csv
import json
import random
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from dl_core.images import load_rgb

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


def detection_transforms(size: int, train: bool) -> v2.Compose:
    """Box-aware transforms: every geometric change moves the boxes too (the lesson's tfm_y=TfmType.COORD).

    Images are squashed to size x size, not cropped (the lesson's CropType.NO), so objects at the edges survive.
    """
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
    resized = [v2.functional.pil_to_tensor(img.resize((size, size), resample=2)) for img in images]  # 2 = bilinear
    return torch.stack(resized).float() / 255


def collate_detection(batch):
    """-> ((images (B, 3, S, S),), [targets]): the Learner's (inputs, target) convention."""
    images = torch.stack([img for img, _ in batch])
    return (images,), [t for _, t in batch]
