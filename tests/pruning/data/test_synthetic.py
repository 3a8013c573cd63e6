import hashlib

import numpy as np
import torch

from edgeprune.pruning.data import build_dataset, render_scene
from edgeprune.pruning.data.synthetic import SYNTHETIC_CLASSES, Synthetic


def scene(seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    return render_scene(np.random.default_rng(seed), size, size)


def digest(image: np.ndarray) -> str:
    return hashlib.sha1(image.tobytes()).hexdigest()


def test_scene_is_a_pure_function_of_the_generator_seed():
    image, label = scene(7, 96)
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    assert label.shape == (96, 96) and label.dtype == np.uint8
    again = scene(7, 96)
    assert np.array_equal(image, again[0]) and np.array_equal(label, again[1])
    other = scene(8, 96)
    assert not np.array_equal(image, other[0]) and not np.array_equal(label, other[1])


def test_all_classes_appear_and_labels_are_valid():
    counts = np.zeros(len(SYNTHETIC_CLASSES), np.int64)
    for seed in range(50):
        _, label = scene(seed, 96)
        assert label.max() < len(SYNTHETIC_CLASSES)
        counts += np.bincount(label.ravel(), minlength=len(SYNTHETIC_CLASSES))
    assert (counts > 0).all()
    shares = counts / counts.sum()
    assert 0.4 < shares[0] < 0.9  # background is common but does not swamp the shapes
    assert shares[1:].min() > 0.01


def test_image_edges_follow_label_edges():
    """Where the label changes, the image changes more than inside regions: they are aligned."""
    at_edges, inside = [], []
    for seed in range(20):
        image, label = scene(seed, 96)
        pixels = image.astype(np.float32)
        step = np.abs(pixels[:, 1:] - pixels[:, :-1]).sum(-1)
        edge = label[:, 1:] != label[:, :-1]
        if edge.any():
            at_edges.append(step[edge].mean())
            inside.append(step[~edge].mean())
    assert np.mean(at_edges) > 1.5 * np.mean(inside)


def test_dataset_sizes_and_spec_count():
    train, val = build_dataset("synthetic", "train"), build_dataset("synthetic", "val")
    assert len(train) == 2000 and len(val) == 200
    assert train.info.num_classes == 8 and train.info.class_names == SYNTHETIC_CLASSES
    assert val.info.eval_size == (256, 256)
    image, label = val[0]
    assert image.shape == (3, 256, 256) and image.dtype == torch.float32
    assert label.shape == (256, 256) and label.dtype == torch.int64
    assert len(build_dataset("synthetic:5", "train")) == 5
    assert len(build_dataset("synthetic:5", "val")) == 200


def test_crop_size_generates_at_that_size():
    image, label = build_dataset("synthetic", "train", crop_size=(48, 80))[3]
    assert image.shape == (3, 48, 80) and label.shape == (48, 80)
    image, label = build_dataset("synthetic", "val", crop_size=(40, 40))[3]
    assert image.shape == (3, 40, 40)


def test_train_items_flip_by_epoch_and_repeat_per_epoch():
    dataset = Synthetic("train", crop_size=(32, 32), seed=3)
    _, scene_label = dataset.load(4)
    plain = torch.from_numpy(scene_label.astype(np.int64))
    seen = set()
    for epoch in range(12):
        dataset.set_epoch(epoch)
        image, label = dataset[4]
        again = dataset[4]
        assert torch.equal(image, again[0]) and torch.equal(label, again[1])
        assert torch.equal(label, plain) or torch.equal(label, plain.flip(-1))
        seen.add(torch.equal(label, plain))
    assert seen == {True, False}


def test_seed_changes_the_scenes():
    a, b = Synthetic("val", (32, 32), seed=0), Synthetic("val", (32, 32), seed=1)
    assert not np.array_equal(a.load(0)[0], b.load(0)[0])
    assert np.array_equal(a.load(0)[0], Synthetic("val", (32, 32), seed=0).load(0)[0])


def test_val_scenes_are_not_train_scenes():
    train, val = Synthetic("train", (32, 32)), Synthetic("val", (32, 32))
    train_digests = {digest(train.load(i)[0]) for i in range(len(val))}
    val_digests = {digest(val.load(i)[0]) for i in range(len(val))}
    assert len(val_digests) == len(val)
    assert not train_digests & val_digests
