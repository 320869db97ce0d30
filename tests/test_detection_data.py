import json

import pytest
import torch
from PIL import Image

from dl_core.detection.data import (
    DetectionDataset, collate_detection, read_coco_json, read_detection_data, read_split_csv, read_voc_folder,
    split_items,
)

VOC_XML = """<annotation><filename>{name}</filename><size><width>100</width><height>80</height></size>
<object><name>raccoon</name><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>60</xmax><ymax>70</ymax></bndbox></object>
<object><name>chair</name><bndbox><xmin>70</xmin><ymin>5</ymin><xmax>95</xmax><ymax>40</ymax></bndbox></object>
</annotation>"""


@pytest.fixture
def voc_folder(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images").mkdir()
    for i in range(3):
        Image.new("RGB", (100, 80), (i * 40, 90, 120)).save(tmp_path / "images" / f"img-{i}.jpg")
        (tmp_path / "annotations" / f"img-{i}.xml").write_text(VOC_XML.format(name=f"img-{i}.jpg"))
    (tmp_path / "test_labels.csv").write_text("filename,width,height,class,xmin,ymin,xmax,ymax\nimg-2.jpg,100,80,raccoon,10,20,60,70\n")
    return tmp_path


@pytest.fixture
def coco_file(tmp_path):
    (tmp_path / "train").mkdir()
    Image.new("RGB", (128, 96)).save(tmp_path / "train" / "a.jpg")
    Image.new("RGB", (128, 96)).save(tmp_path / "train" / "b.jpg")
    data = {"type": "instances",  # the lesson's pascal_train2007.json has this key; COCO files do not
            "categories": [{"id": 62, "name": "chair"}, {"id": 86, "name": "vase"}],
            "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
            "annotations": [{"image_id": 1, "bbox": [10, 20, 30, 40], "category_id": 86},
                            {"image_id": 1, "bbox": [0, 0, 5, 5], "category_id": 62, "iscrowd": 1}]}
    path = tmp_path / "train.json"
    path.write_text(json.dumps(data))
    return path


def test_voc_reader(voc_folder):
    items = read_voc_folder(voc_folder)
    assert [it.image_path.name for it in items] == ["img-0.jpg", "img-1.jpg", "img-2.jpg"]
    assert items[0].boxes == [[10, 20, 60, 70], [70, 5, 95, 40]] and items[0].labels == ["raccoon", "chair"]
    assert items[0].image_path.exists()
    assert read_split_csv(voc_folder / "test_labels.csv") == {"img-2.jpg"}
    assert read_detection_data(voc_folder)[1].labels == ["raccoon", "chair"]


def test_coco_reader_converts_xywh_and_skips_crowds(coco_file):
    items = read_coco_json(coco_file)
    assert items[0].image_path == coco_file.parent / "train" / "a.jpg"
    assert items[0].boxes == [[10, 20, 40, 60]] and items[0].labels == ["vase"]
    assert items[1].boxes == []
    assert read_detection_data(coco_file)[0].labels == ["vase"]


def test_unknown_layout_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="VOC XML"):
        read_detection_data(tmp_path)


def test_split_is_seeded_and_disjoint(voc_folder):
    items = read_voc_folder(voc_folder)
    train, valid = split_items(items, 1, seed=3)
    assert len(train) == 2 and len(valid) == 1 and valid[0] not in train
    assert split_items(items, 1, seed=3)[1] == valid


def test_dataset_normalises_boxes_keeps_known_classes_and_boxes_follow_flips(voc_folder):
    items = read_voc_folder(voc_folder)
    plain = DetectionDataset(items, ["raccoon", "vase"], 64, train=False)
    image, target = plain[0]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32 and image.max() <= 1
    assert target["labels"].tolist() == [0]  # "chair" is not a class of this model: dropped
    assert torch.allclose(target["boxes"], torch.tensor([[0.1, 0.25, 0.6, 0.875]]), atol=0.02)
    flipped = DetectionDataset(items, ["raccoon"], 64, train=False)
    from torchvision.transforms import v2
    flipped.transform = v2.Compose([v2.RandomHorizontalFlip(p=1.0), *plain.transform.transforms])
    _, t2 = flipped[0]
    assert torch.allclose(t2["boxes"], torch.tensor([[0.4, 0.25, 0.9, 0.875]]), atol=0.02)
    (images,), targets = collate_detection([plain[0], plain[1]])
    assert images.shape == (2, 3, 64, 64) and len(targets) == 2


def test_training_augmentation_keeps_boxes_valid(voc_folder):
    ds = DetectionDataset(read_voc_folder(voc_folder), ["raccoon", "chair"], 96, train=True)
    torch.manual_seed(0)
    for _ in range(20):
        _, target = ds[0]
        boxes = target["boxes"]
        assert boxes.shape[1] == 4 and len(boxes) == len(target["labels"])
        assert (boxes >= 0).all() and (boxes <= 1).all() and (boxes[:, 2:] > boxes[:, :2]).all()


def test_raccoon_split_and_evaluation_items_follow_test_labels(voc_folder, coco_file):
    from dl_core.detection.data import evaluation_items, raccoon_split

    train, test = raccoon_split(voc_folder)
    assert [it.image_path.name for it in train] == ["img-0.jpg", "img-1.jpg"] and [it.image_path.name for it in test] == ["img-2.jpg"]
    assert [it.image_path.name for it in evaluation_items(voc_folder, "test")] == ["img-2.jpg"]
    assert len(evaluation_items(voc_folder)) == 3
    heldout = evaluation_items(coco_file, "heldout", n_heldout=1, seed=5)
    assert heldout == split_items(read_coco_json(coco_file), 1, seed=5)[1]
    with pytest.raises(ValueError, match="unknown split"):
        evaluation_items(voc_folder, "valid")


def test_training_data_holds_out_both_sets_and_describes_them(voc_folder, coco_file):
    from dl_core.detection.data import describe_data, training_data

    (voc_folder / "coco").mkdir()
    coco_file.rename(voc_folder / "coco" / "train.json")
    (coco_file.parent / "train").rename(voc_folder / "coco" / "train")
    train, heldout = training_data(voc_folder, voc_folder / "coco", coco_valid=1, seed=0)
    assert {name: len(items) for name, items in train.items()} == {"raccoon": 2, "coco_tiny": 1}
    assert {name: len(items) for name, items in heldout.items()} == {"raccoon_test": 1, "coco_tiny_heldout": 1}
    facts = describe_data(train, heldout)
    assert facts["train_images"] == {"raccoon": 2, "coco_tiny": 1}
    sizes = facts["coco_tiny_sizes"]  # one 30 x 40 vase in a 128 x 96 image (the crowd box is skipped)
    assert sizes == {"median_object_side_px": 40, "median_object_side_fraction": 0.3125, "median_image_side_px": 128,
                     "objects": 1}
