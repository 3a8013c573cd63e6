from pathlib import Path

import numpy as np
import pytest
import torch

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.data import build_dataset

from .trees import stripes, write_image, write_label

RAW = [0, 1, 2, 150, 255]


@pytest.fixture
def ade_root(tmp_path: Path) -> Path:
    root = tmp_path / "ADEChallengeData2016"
    for split, folder, count in (("train", "training", 3), ("val", "validation", 2)):
        for i in range(count):
            name = f"ADE_{split}_{i:08d}"
            write_image(root / "images" / folder / f"{name}.jpg", 24, 32, seed=i)
            write_label(root / "annotations" / folder / f"{name}.png", stripes(24, 32, RAW))
    return root


def test_finds_the_pairs_of_each_split(ade_root):
    train = build_dataset(f"ade20k:{ade_root}", "train")
    val = build_dataset(f"ade20k:{ade_root}", "val")
    assert len(train) == 3 and len(val) == 2
    image, label = train.pairs[1]
    assert image == ade_root / "images/training/ADE_train_00000001.jpg"
    assert label == ade_root / "annotations/training/ADE_train_00000001.png"
    assert train.info.num_classes == 150 and len(train.info.class_names) == 150
    assert train.info.class_names[:3] == ("wall", "building", "sky") and train.info.class_names[-1] == "flag"


def test_reduce_zero_label(ade_root):
    _, label = build_dataset(f"ade20k:{ade_root}", "val", crop_size=(24, 32))[0]
    expected = stripes(24, 32, [255, 0, 1, 149, 255]).astype(np.int64)
    assert torch.equal(label, torch.from_numpy(expected))


def test_default_train_and_val_sizes(ade_root):
    image, label = build_dataset(f"ade20k:{ade_root}", "train")[0]
    assert image.shape == (3, 512, 512) and label.shape == (512, 512)
    assert set(label.unique().tolist()) <= {0, 1, 149, 255}
    image, label = build_dataset(f"ade20k:{ade_root}", "val")[1]
    assert image.shape == (3, 512, 512) and label.shape == (512, 512)


def test_label_value_above_150_raises(ade_root):
    bad = ade_root / "annotations/validation/ADE_val_00000001.png"
    write_label(bad, stripes(24, 32, [0, 151, 200]))
    dataset = build_dataset(f"ade20k:{ade_root}", "val")
    with pytest.raises(EdgepruneError, match=rf"{bad}: label values 151, 200 are out of range for ade20k"):
        dataset[1]


def test_image_without_annotation_raises(ade_root):
    (ade_root / "annotations/training/ADE_train_00000002.png").unlink()
    expected = r"ADE_train_00000002\.jpg: no label file \(expected .*annotations/training"
    with pytest.raises(EdgepruneError, match=expected):
        build_dataset(f"ade20k:{ade_root}", "train")


def test_empty_or_missing_image_folder_raises(ade_root, tmp_path):
    for image in (ade_root / "images/validation").glob("*.jpg"):
        image.unlink()
    with pytest.raises(EdgepruneError, match=r"images/validation: no images found \(expected \*\.jpg"):
        build_dataset(f"ade20k:{ade_root}", "val")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgepruneError, match=r"empty/images/training: ADE20K image folder not found"):
        build_dataset(f"ade20k:{tmp_path / 'empty'}", "train")


def test_corrupt_image_raises_when_loaded(ade_root):
    broken = ade_root / "images/validation/ADE_val_00000000.jpg"
    broken.write_bytes(b"\xff\xd8 broken")
    with pytest.raises(EdgepruneError, match=rf"{broken}: unreadable or corrupt image"):
        build_dataset(f"ade20k:{ade_root}", "val")[0]
