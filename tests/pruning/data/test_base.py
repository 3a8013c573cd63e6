from pathlib import Path

import numpy as np
import pytest
import torch

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.data.base import DatasetInfo, PairDataset, Recipe, check_label, read_image, read_label
from edgeprune.pruning.data.transforms import ScaleJitter

from .trees import stripes, write_image, write_label


class Tiny(PairDataset):
    """Every ``img<i>.png`` in the root with its ``lab<i>.png`` beside it; 3 classes."""

    name = "tiny"
    class_names = ("a", "b", "c")
    recipe = Recipe(jitter=ScaleJitter(base=(64, 48)), train_crop=(32, 32), eval_size=(20, 28))

    def find_pairs(self, root: Path, split: str) -> list[tuple[Path, Path]]:
        return [(p, p.with_name(p.name.replace("img", "lab"))) for p in sorted(root.glob("img*.png"))]

    def map_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        return raw


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    for i in range(3):
        write_image(tmp_path / f"img{i}.png", 24, 32, seed=i)
        write_label(tmp_path / f"lab{i}.png", stripes(24, 32, [0, 1, 2, 255]))
    return tmp_path


def info(num_classes: int = 3) -> DatasetInfo:
    return DatasetInfo(name="t", num_classes=num_classes, class_names=("x",) * num_classes,
                       train_crop=(8, 8), eval_size=(8, 8))


def test_info_defaults():
    assert info().ignore_index == 255
    assert info().mean == (123.675, 116.28, 103.53)


def test_train_items_are_reproducible_per_seed_epoch_and_index(tiny_root):
    first, second = Tiny(tiny_root, "train", seed=5), Tiny(tiny_root, "train", seed=5)
    image, label = first[1]
    assert image.shape == (3, 32, 32) and label.shape == (32, 32)
    again = second[1]
    assert torch.equal(image, again[0]) and torch.equal(label, again[1])

    second.set_epoch(1)
    assert not torch.equal(image, second[1][0])
    second.set_epoch(0)
    assert torch.equal(image, second[1][0])
    assert not torch.equal(image, Tiny(tiny_root, "train", seed=6)[1][0])


def test_val_items_are_resized_to_the_eval_size_or_the_given_size(tiny_root):
    image, label = Tiny(tiny_root, "val")[0]
    assert image.shape == (3, 20, 28) and label.shape == (20, 28)
    dataset = Tiny(tiny_root, "val", crop_size=(24, 32))
    assert dataset.info.eval_size == (24, 32)
    image, label = dataset[0]
    assert torch.equal(label, torch.from_numpy(stripes(24, 32, [0, 1, 2, 255]).astype(np.int64)))


def test_crop_size_sets_the_train_crop(tiny_root):
    dataset = Tiny(tiny_root, "train", crop_size=(16, 8))
    assert dataset.info.train_crop == (16, 8) and dataset.info.eval_size == (20, 28)
    assert dataset[0][0].shape == (3, 16, 8)


def test_index_past_the_end_raises_index_error(tiny_root):
    with pytest.raises(IndexError):
        Tiny(tiny_root, "val")[3]


def test_unknown_split_and_missing_root_raise(tmp_path):
    with pytest.raises(EdgepruneError, match="unknown split 'test'"):
        Tiny(tmp_path, "test")
    with pytest.raises(EdgepruneError, match=f"{tmp_path / 'nope'}: tiny dataset folder not found"):
        Tiny(tmp_path / "nope", "val")


def test_label_of_another_size_than_its_image_raises(tiny_root):
    write_label(tiny_root / "lab0.png", np.zeros((10, 10)))
    with pytest.raises(EdgepruneError, match=r"lab0\.png: label is 10x10 but its image img0.png is 24x32"):
        Tiny(tiny_root, "val")[0]


def test_out_of_range_label_raises_naming_file_and_values(tiny_root):
    write_label(tiny_root / "lab2.png", stripes(24, 32, [0, 3, 7, 255]))
    dataset = Tiny(tiny_root, "train")
    dataset[0]
    with pytest.raises(EdgepruneError, match=r"lab2\.png: label values 3, 7 are out of range"):
        dataset[2]


def test_check_label_accepts_classes_and_ignore_and_names_raw_values():
    raw = np.array([[0, 1], [2, 255]])
    out = check_label(raw, raw, Path("x.png"), info())
    assert out.dtype == np.uint8 and out.tolist() == [[0, 1], [2, 255]]
    mapped = np.array([[0, -1], [2, 255]])
    expected = r"x\.png: label values 99 are out of range for t \(3 classes, ignore 255\)"
    with pytest.raises(EdgepruneError, match=expected):
        check_label(mapped, np.array([[0, 99], [2, 255]]), Path("x.png"), info())


def test_corrupt_and_truncated_images_raise(tmp_path):
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(EdgepruneError, match=r"garbage\.jpg: unreadable or corrupt image"):
        read_image(garbage)
    whole = tmp_path / "whole.jpg"
    write_image(whole, 64, 64)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(whole.read_bytes()[:300])
    with pytest.raises(EdgepruneError, match=r"truncated\.jpg: unreadable or corrupt image"):
        read_image(truncated)


def test_colour_label_image_raises(tmp_path):
    path = tmp_path / "rgb.png"
    write_image(path, 4, 4)
    with pytest.raises(EdgepruneError, match=r"rgb\.png: label image has mode RGB"):
        read_label(path)
