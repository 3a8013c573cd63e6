from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.data import build_dataset

from .trees import stripes, write_image, write_label


def voc_palette() -> list[int]:
    """The VOC colour map: index i's colour is built from i's bits, so no index equals its colour."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette


PALETTE = voc_palette()
VALUES = [0, 15, 20, 255]


@pytest.fixture
def devkit(tmp_path: Path) -> Path:
    root = tmp_path / "VOCdevkit" / "VOC2012"
    lists = root / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    ids = {"train": ["2007_000032", "2007_000039"], "val": ["2007_000033"]}
    for split, names in ids.items():
        (lists / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
        for n in names:
            write_image(root / "JPEGImages" / f"{n}.jpg", 20, 28)
            write_label(root / "SegmentationClass" / f"{n}.png", stripes(20, 28, VALUES), PALETTE)
    return tmp_path / "VOCdevkit"


def test_palette_indices_are_read_and_255_stays_ignore(devkit):
    label_file = devkit / "VOC2012/SegmentationClass/2007_000033.png"
    with Image.open(label_file) as img:
        assert img.mode == "P" and img.convert("RGB").getpixel((10, 0)) == (192, 128, 128)  # index 15: person
    _, label = build_dataset(f"voc:{devkit / 'VOC2012'}", "val", crop_size=(20, 28))[0]
    assert torch.equal(label, torch.from_numpy(stripes(20, 28, VALUES).astype(np.int64)))


def test_accepts_the_devkit_folder_and_reads_split_lists(devkit):
    train = build_dataset(f"voc:{devkit}", "train")
    assert [image.stem for image, _ in train.pairs] == ["2007_000032", "2007_000039"]
    assert train.pairs[0][1] == devkit / "VOC2012/SegmentationClass/2007_000032.png"
    assert train.info.num_classes == 21 and train.info.class_names[15] == "person"
    image, label = train[0]
    assert image.shape == (3, 512, 512) and set(label.unique().tolist()) <= set(VALUES)
    image, label = build_dataset(f"voc:{devkit}", "val")[0]
    assert image.shape == (3, 512, 512) and label.shape == (512, 512)


def test_train_prefers_augmented_labels_and_their_list(devkit):
    root = devkit / "VOC2012"
    aug = root / "SegmentationClassAug"
    write_label(aug / "2007_000032.png", stripes(20, 28, [1, 2]))
    write_image(root / "JPEGImages" / "2008_000001.jpg", 20, 28)
    write_label(aug / "2008_000001.png", stripes(20, 28, [3]))
    train = build_dataset(f"voc:{root}", "train", crop_size=(20, 28))
    assert [label for _, label in train.pairs] == [aug / "2007_000032.png", root / "SegmentationClass/2007_000039.png"]

    (root / "ImageSets/Segmentation/aug.txt").write_text("2007_000032\n2008_000001\n")
    train = build_dataset(f"voc:{root}", "train", crop_size=(20, 28))
    assert [label for _, label in train.pairs] == [aug / "2007_000032.png", aug / "2008_000001.png"]
    val = build_dataset(f"voc:{root}", "val")
    assert val.pairs[0][1] == root / "SegmentationClass/2007_000033.png"


def test_class_21_raises_naming_the_file(devkit):
    bad = devkit / "VOC2012/SegmentationClass/2007_000033.png"
    write_label(bad, stripes(20, 28, [0, 21, 255]), PALETTE)
    with pytest.raises(EdgepruneError, match=rf"{bad}: label values 21 are out of range for voc \(21 classes"):
        build_dataset(f"voc:{devkit}", "val")[0]


def test_layout_errors(devkit, tmp_path):
    root = devkit / "VOC2012"
    (root / "SegmentationClass/2007_000039.png").unlink()
    expected = r"2007_000039\.jpg: no label file \(expected .*SegmentationClass/2007_000039\.png"
    with pytest.raises(EdgepruneError, match=expected):
        build_dataset(f"voc:{root}", "train")
    (root / "JPEGImages/2007_000033.jpg").unlink()
    with pytest.raises(EdgepruneError, match=r"val\.txt: lists 2007_000033 but .*2007_000033\.jpg does not exist"):
        build_dataset(f"voc:{root}", "val")
    (root / "ImageSets/Segmentation/val.txt").write_text("\n")
    with pytest.raises(EdgepruneError, match=r"JPEGImages: no images found \(expected \*\.jpg listed in val\.txt"):
        build_dataset(f"voc:{root}", "val")
    (root / "ImageSets/Segmentation/val.txt").unlink()
    with pytest.raises(EdgepruneError, match=r"val\.txt: VOC split list not found"):
        build_dataset(f"voc:{root}", "val")
    with pytest.raises(EdgepruneError, match=r"JPEGImages: VOC image folder not found"):
        build_dataset(f"voc:{tmp_path}", "val")
