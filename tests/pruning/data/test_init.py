"""``build_dataset``: parsing the dataset spec."""

import pytest

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.data import DatasetInfo, build_dataset
from edgeprune.pruning.data.synthetic import Synthetic
from edgeprune.pruning.data.voc import VOC


def test_synthetic_spec():
    dataset = build_dataset("synthetic:12", "train", crop_size=(32, 32), seed=4)
    assert isinstance(dataset, Synthetic) and len(dataset) == 12 and dataset.seed == 4
    assert isinstance(dataset.info, DatasetInfo) and dataset.info.train_crop == (32, 32)


@pytest.mark.parametrize("count", ["0", "-3", "abc", ""])
def test_bad_synthetic_count_raises(count):
    with pytest.raises(EdgepruneError, match=rf"synthetic:{count}: expected synthetic:N"):
        build_dataset(f"synthetic:{count}", "train")


def test_unknown_kind_raises():
    expected = r"coco:/data: unknown dataset kind 'coco' \(expected one of synthetic, ade20k"
    with pytest.raises(EdgepruneError, match=expected):
        build_dataset("coco:/data", "train")


def test_file_dataset_without_a_path_raises():
    with pytest.raises(EdgepruneError, match=r"ade20k: ade20k needs its folder, as ade20k:/path/to/dataset"):
        build_dataset("ade20k", "train")


def test_missing_dataset_folder_raises(tmp_path):
    missing = tmp_path / "VOCdevkit"
    with pytest.raises(EdgepruneError, match=rf"{missing}: voc dataset folder not found"):
        build_dataset(f"voc:{missing}", "val")


def test_unknown_split_raises(tmp_path):
    with pytest.raises(EdgepruneError, match=r"unknown split 'test'"):
        build_dataset("synthetic", "test")
    with pytest.raises(EdgepruneError, match=r"voc: unknown split 'trainval'"):
        VOC(tmp_path, "trainval")


def test_negative_seed_raises():
    with pytest.raises(EdgepruneError, match=r"synthetic: the seed must be a non-negative integer, got -1"):
        build_dataset("synthetic", "train", seed=-1)
