from pathlib import Path

import numpy as np
import pytest
import torch

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.data import build_dataset
from edgeprune.pruning.data.cityscapes import LABEL_ID_TO_TRAIN_ID

from .trees import stripes, write_image, write_label

# labelIds and the trainIds the official table gives them.
LABEL_IDS = [0, 7, 8, 11, 24, 26, 33, 9, 255]
TRAIN_IDS = [255, 0, 1, 2, 11, 13, 18, 255, 255]


def add_frame(root: Path, split: str, city: str, name: str, label_ids: list[int], train_ids: list[int] | None) -> None:
    write_image(root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png", 16, 36)
    labels = root / "gtFine" / split / city
    write_label(labels / f"{name}_gtFine_labelIds.png", stripes(16, 36, label_ids))
    if train_ids is not None:
        write_label(labels / f"{name}_gtFine_labelTrainIds.png", stripes(16, 36, train_ids))


@pytest.fixture
def city_root(tmp_path: Path) -> Path:
    root = tmp_path / "cityscapes"
    add_frame(root, "train", "aachen", "aachen_000000_000019", LABEL_IDS, None)
    add_frame(root, "train", "bremen", "bremen_000001_000019", LABEL_IDS, None)
    add_frame(root, "val", "frankfurt", "frankfurt_000000_000294", LABEL_IDS, None)
    add_frame(root, "val", "lindau", "lindau_000000_000019", LABEL_IDS, [5, 6, 255])
    return root


def test_official_table():
    assert LABEL_ID_TO_TRAIN_ID[[7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23]].tolist() == list(range(11))
    assert LABEL_ID_TO_TRAIN_ID[[24, 25, 26, 27, 28, 31, 32, 33]].tolist() == list(range(11, 19))
    assert set(LABEL_ID_TO_TRAIN_ID[[0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30, 255]].tolist()) == {255}
    assert set(LABEL_ID_TO_TRAIN_ID[34:255].tolist()) == {-1}


def test_finds_frames_in_city_folders(city_root):
    train = build_dataset(f"cityscapes:{city_root}", "train")
    assert [image.parent.name for image, _ in train.pairs] == ["aachen", "bremen"]
    assert train.pairs[0][1] == city_root / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"
    assert train.info.num_classes == 19 and train.info.class_names[0] == "road"


def test_label_ids_map_to_train_ids(city_root):
    _, label = build_dataset(f"cityscapes:{city_root}", "val", crop_size=(16, 36))[0]
    assert torch.equal(label, torch.from_numpy(stripes(16, 36, TRAIN_IDS).astype(np.int64)))


def test_train_id_files_are_used_directly(city_root):
    dataset = build_dataset(f"cityscapes:{city_root}", "val", crop_size=(16, 36))
    assert dataset.pairs[1][1].name == "lindau_000000_000019_gtFine_labelTrainIds.png"
    assert torch.equal(dataset[1][1], torch.from_numpy(stripes(16, 36, [5, 6, 255]).astype(np.int64)))


def test_default_sizes(city_root):
    image, label = build_dataset(f"cityscapes:{city_root}", "train")[0]
    assert image.shape == (3, 512, 1024) and label.shape == (512, 1024)
    image, label = build_dataset(f"cityscapes:{city_root}", "val")[0]
    assert image.shape == (3, 512, 1024) and set(label.unique().tolist()) == set(TRAIN_IDS)


def test_invalid_label_ids_and_train_ids_raise(city_root):
    bad = city_root / "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png"
    write_label(bad, stripes(16, 36, [7, 34, 40]))
    bad_train = city_root / "gtFine/val/lindau/lindau_000000_000019_gtFine_labelTrainIds.png"
    write_label(bad_train, stripes(16, 36, [0, 19]))
    dataset = build_dataset(f"cityscapes:{city_root}", "val")
    with pytest.raises(EdgepruneError, match=rf"{bad}: label values 34, 40 are out of range for cityscapes"):
        dataset[0]
    with pytest.raises(EdgepruneError, match=rf"{bad_train}: label values 19 are out of range"):
        dataset[1]


def test_missing_label_and_missing_split_raise(city_root):
    (city_root / "gtFine/train/bremen/bremen_000001_000019_gtFine_labelIds.png").unlink()
    with pytest.raises(EdgepruneError, match=r"bremen_000001_000019_leftImg8bit\.png: no label file"):
        build_dataset(f"cityscapes:{city_root}", "train")
    for image in (city_root / "leftImg8bit/train").glob("*/*.png"):
        image.unlink()
    with pytest.raises(EdgepruneError, match=r"leftImg8bit/train: no images found \(expected \*/\*_leftImg8bit\.png"):
        build_dataset(f"cityscapes:{city_root}", "train")
