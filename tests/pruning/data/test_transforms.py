import numpy as np
import torch

from edgeprune.pruning.data.transforms import (
    EvalTransform,
    FlipAugment,
    ScaleJitter,
    TrainAugment,
    hsv_to_rgb,
    photometric_distortion,
    random_crop,
    rgb_to_hsv,
)

MEAN, STD = (100.0, 110.0, 120.0), (50.0, 60.0, 70.0)


def normalized(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(((image.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1).astype(np.float32))


def asymmetric_pair(h: int = 16, w: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """An image whose every column differs, and a label that is not mirror-symmetric."""
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = np.arange(w) * 10
    image[..., 1] = np.arange(h)[:, None] * 5
    label = np.zeros((h, w), np.uint8)
    label[:, : w // 3] = 1
    label[: h // 2, w // 3 :] = 2
    return image, label


def test_keep_ratio_target_size_fits_the_base_box():
    jitter = ScaleJitter(base=(2048, 512))
    assert jitter.target_size((512, 1024), 1.0) == (512, 1024)
    assert jitter.target_size((100, 50), 1.0) == (1024, 512)  # the short edge limits
    assert jitter.target_size((100, 1000), 0.5) == (102, 1024)  # the long edge limits


def test_scale_choices_are_the_only_ratios_drawn():
    jitter = ScaleJitter(base=(2048, 1024), choices=(0.5, 0.75, 1.0, 2.0))
    rng = np.random.default_rng(0)
    drawn = {jitter.sample(rng) for _ in range(200)}
    assert drawn == {0.5, 0.75, 1.0, 2.0}
    ranged = [ScaleJitter(base=(2048, 512)).sample(rng) for _ in range(200)]
    assert 0.5 <= min(ranged) < 0.7 and 1.8 < max(ranged) <= 2.0


def test_crop_retries_until_no_class_dominates():
    label = np.zeros((100, 100), np.uint8)
    label[:, 45:55] = 1
    image = np.zeros((100, 100, 3), np.uint8)

    def mixed_crops(cat_max_ratio: float) -> int:
        count = 0
        for seed in range(100):
            _, crop = random_crop(image, label, (20, 20), np.random.default_rng(seed), 255, cat_max_ratio)
            assert crop.shape == (20, 20)
            count += np.bincount(crop.ravel(), minlength=2).max() < 0.75 * crop.size
        return count

    assert mixed_crops(1.0) < 50
    assert mixed_crops(0.75) > 80


def test_crop_ignores_ignore_pixels_when_counting_classes():
    label = np.full((40, 40), 255, np.uint8)
    label[:, :2] = 0  # only one real class anywhere: every crop fails the test, the last is kept
    image = np.zeros((40, 40, 3), np.uint8)
    _, crop = random_crop(image, label, (10, 10), np.random.default_rng(0), 255, 0.75)
    assert crop.shape == (10, 10)


def test_train_output_is_padded_to_the_crop_with_ignore():
    image, label = asymmetric_pair(h=30, w=40)
    augment = TrainAugment(ScaleJitter(base=(40, 30), low=1.0, high=1.0), (64, 64), 255, MEAN, STD)
    out_image, out_label = augment(image, label, np.random.default_rng(3))
    assert out_image.shape == (3, 64, 64) and out_image.dtype == torch.float32
    assert out_label.shape == (64, 64) and out_label.dtype == torch.int64
    assert (out_label[30:, :] == 255).all() and (out_label[:, 40:] == 255).all()
    assert (out_image[:, 30:, :] == 0).all() and (out_image[:, :, 40:] == 0).all()
    assert set(out_label[:30, :40].unique().tolist()) == {0, 1, 2}


def test_flip_moves_image_and_label_together():
    image, label = asymmetric_pair()
    augment = TrainAugment(
        ScaleJitter(base=(24, 16), low=1.0, high=1.0), (16, 24), 255, MEAN, STD, cat_max_ratio=1.0, photometric=False
    )
    plain = (normalized(image), torch.from_numpy(label.astype(np.int64)))
    mirrored = (plain[0].flip(-1), plain[1].flip(-1))
    seen = set()
    for seed in range(20):
        out_image, out_label = augment(image, label, np.random.default_rng(seed))
        if torch.equal(out_label, plain[1]):
            assert torch.allclose(out_image, plain[0])
            seen.add("plain")
        else:
            assert torch.equal(out_label, mirrored[1])
            assert torch.allclose(out_image, mirrored[0])
            seen.add("flipped")
    assert seen == {"plain", "flipped"}


def test_flip_augment_flips_generated_scenes_consistently():
    image, label = asymmetric_pair()
    flips = 0
    for seed in range(20):
        out_image, out_label = FlipAugment(MEAN, STD)(image, label, np.random.default_rng(seed))
        flipped = not torch.equal(out_label, torch.from_numpy(label.astype(np.int64)))
        expected = normalized(image[:, ::-1] if flipped else image)
        assert torch.allclose(out_image, expected)
        flips += flipped
    assert 0 < flips < 20


def test_photometric_distortion_stays_in_range_and_changes_pixels():
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    outputs = [photometric_distortion(image, np.random.default_rng(seed)) for seed in range(10)]
    for out in outputs:
        assert out.shape == image.shape and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 255
    assert sum(not np.allclose(out, image) for out in outputs) >= 5


def test_hsv_round_trip():
    rgb = np.random.default_rng(1).uniform(0, 255, (1000, 3)).astype(np.float32)
    assert np.allclose(hsv_to_rgb(rgb_to_hsv(rgb)), rgb, atol=1e-2)
    pure_red = rgb_to_hsv(np.array([[255.0, 0.0, 0.0], [0.0, 0.0, 255.0]], np.float32))
    assert np.allclose(pure_red, [[0.0, 1.0, 255.0], [2 / 3, 1.0, 255.0]])


def test_eval_resizes_label_by_nearest_neighbour():
    image, label = asymmetric_pair(h=30, w=45)
    out_image, out_label = EvalTransform((64, 48), MEAN, STD)(image, label)
    assert out_image.shape == (3, 64, 48) and out_label.shape == (64, 48)
    assert set(out_label.unique().tolist()) == {0, 1, 2}


def test_eval_at_native_size_is_only_normalization():
    image, label = asymmetric_pair(16, 24)
    out_image, out_label = EvalTransform((16, 24), MEAN, STD)(image, label)
    assert torch.allclose(out_image, normalized(image))
    assert torch.equal(out_label, torch.from_numpy(label.astype(np.int64)))
