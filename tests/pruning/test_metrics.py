"""ConfusionMatrix against IoUs worked out by hand on tiny label maps."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from edgeprune.pruning.metrics import ConfusionMatrix

IGNORE = 255


def matrix_of(pred: list, target: list, num_classes: int = 3) -> ConfusionMatrix:
    cm = ConfusionMatrix(num_classes, IGNORE)
    cm.update(torch.tensor([pred]), torch.tensor([target]))
    return cm


def test_two_by_three_image_three_classes():
    # target      pred
    # 0 0 1       0 1 1
    # 2 2 1       2 0 1
    # class 0: overlap {(0,0)} = 1; union {(0,0),(0,1),(1,1)} = 3   -> 1/3
    # class 1: overlap {(0,2),(1,2)} = 2; union {(0,1),(0,2),(1,2)} = 3 -> 2/3
    # class 2: overlap {(1,0)} = 1; union {(1,0),(1,1)} = 2          -> 1/2
    cm = matrix_of([[0, 1, 1], [2, 0, 1]], [[0, 0, 1], [2, 2, 1]])
    assert cm.matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]  # rows: target, columns: prediction
    assert cm.iou().tolist() == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert cm.miou() == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)  # 0.5
    assert cm.pixel_accuracy() == pytest.approx(4 / 6)


def test_ignored_pixel_counts_for_nothing():
    # target      pred
    # 0 255       0 1
    # 1 1         1 1
    # The ignored pixel is predicted 1. Ignored: class 0 IoU 1/1, class 1 IoU 2/2 -> mIoU 1.
    # Were it counted as a class-0 pixel: class 0 1/2, class 1 2/3 -> mIoU 7/12.
    cm = matrix_of([[0, 1], [1, 1]], [[0, IGNORE], [1, 1]], num_classes=2)
    assert cm.iou().tolist() == [1.0, 1.0]
    assert cm.miou() == 1.0
    assert cm.pixel_accuracy() == 1.0
    assert cm.matrix.sum() == 3


def test_class_absent_from_both_is_excluded():
    # 3 classes; class 2 is in neither target nor prediction: its IoU is 0/0 -> NaN, left out.
    # class 0: overlap 1, union 2 -> 1/2; class 1: overlap 2, union 3 -> 2/3; mIoU = (1/2 + 2/3) / 2 = 7/12
    cm = matrix_of([[0, 1], [1, 1]], [[0, 0], [1, 1]])
    iou = cm.iou()
    assert iou[:2].tolist() == pytest.approx([1 / 2, 2 / 3])
    assert math.isnan(iou[2])
    assert cm.miou() == pytest.approx(7 / 12)


def test_class_only_predicted_counts_as_zero():
    # target 0 0 0 1, pred 0 0 2 1: class 2 is never in the target but predicted once -> IoU 0/1 = 0.
    # class 0: 2/3, class 1: 1/1, class 2: 0 -> mIoU = (2/3 + 1 + 0) / 3 = 5/9
    cm = matrix_of([[0, 0, 2, 1]], [[0, 0, 0, 1]])
    assert cm.iou().tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    assert cm.miou() == pytest.approx(5 / 9)


def test_prediction_at_ignored_pixel_may_be_any_class_but_is_dropped():
    # Class 2 is predicted only where the label is ignored, so it stays absent (NaN), not 0.
    cm = matrix_of([[0, 2]], [[0, IGNORE]])
    assert cm.iou()[0] == 1.0 and math.isnan(cm.iou()[2])
    assert cm.miou() == 1.0


def test_dataset_accumulation_is_not_a_mean_of_image_mious():
    # image a: target 0 0, pred 0 0 -> alone mIoU 1 (class 0: 2/2)
    # image b: target 0 1, pred 1 1 -> alone class 0: 0/1, class 1: 1/2 -> mIoU 1/4
    # together: class 0 overlap 2, union 3 -> 2/3; class 1 overlap 1, union 2 -> 1/2; mIoU 7/12 (not 5/8)
    cm = ConfusionMatrix(2, IGNORE)
    cm.update(torch.tensor([[0, 0]]), torch.tensor([[0, 0]]))
    cm.update(torch.tensor([[1, 1]]), torch.tensor([[0, 1]]))
    assert cm.miou() == pytest.approx(7 / 12)


def test_two_updates_equal_one_update_of_the_concatenation():
    gen = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 5, (4, 7, 9), generator=gen)
    target = torch.randint(0, 5, (4, 7, 9), generator=gen)
    target[target == 4] = IGNORE
    split = ConfusionMatrix(5)
    split.update(pred[:1], target[:1])
    split.update(pred[1:], target[1:])
    whole = ConfusionMatrix(5)
    whole.update(pred, target)
    assert torch.equal(split.matrix, whole.matrix)
    merged = ConfusionMatrix(5)
    other = ConfusionMatrix(5)
    merged.update(pred[:2], target[:2])
    other.update(pred[2:], target[2:])
    merged.merge(other)
    assert torch.equal(merged.matrix, whole.matrix)


def test_logits_are_argmaxed_over_the_class_dim():
    # Logits [1, 3, 1, 2]: pixel 0 scores (0.1, 2.0, -1) -> class 1; pixel 1 scores (0, 0, 5) -> class 2.
    logits = torch.tensor([[[[0.1, 0.0]], [[2.0, 0.0]], [[-1.0, 5.0]]]])
    target = torch.tensor([[[1, 0]]])
    cm = ConfusionMatrix(3, IGNORE)
    cm.update(logits, target)
    assert cm.matrix.tolist() == [[0, 0, 1], [0, 1, 0], [0, 0, 0]]
    ids = ConfusionMatrix(3, IGNORE)
    ids.update(torch.tensor([[[1, 2]]]), target)
    assert torch.equal(cm.matrix, ids.matrix)


def test_mismatched_shapes_name_both():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"\(1, 2, 3\).*\(1, 3, 2\)"):
        cm.update(torch.zeros(1, 2, 3, dtype=torch.long), torch.zeros(1, 3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(1, 3, 4, 4\).*\(1, 4, 5\)"):
        cm.update(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="3 classes"):
        cm.update(torch.zeros(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))


def test_out_of_range_target_values_are_named():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"target values 3, 7 are outside \[0, 3\) or 255"):
        cm.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.tensor([[[0, 3], [7, 255]]]))
    with pytest.raises(ValueError, match="target values -1"):
        cm.update(torch.zeros(1, 1, 1, dtype=torch.long), torch.tensor([[[-1]]]))
    with pytest.raises(ValueError, match="prediction values 5"):
        cm.update(torch.tensor([[[5]]]), torch.tensor([[[0]]]))
    assert cm.matrix.sum() == 0


def test_uint8_labels_reset_and_empty_matrix():
    cm = ConfusionMatrix(2)
    assert math.isnan(cm.miou()) and math.isnan(cm.pixel_accuracy())
    cm.update(torch.tensor([[[0, 1]]], dtype=torch.uint8), torch.tensor([[[0, 255]]], dtype=torch.uint8))
    assert cm.matrix.tolist() == [[1, 0], [0, 0]]
    cm.reset()
    assert cm.matrix.sum() == 0


def test_merge_rejects_a_different_matrix():
    with pytest.raises(ValueError, match="4-class"):
        ConfusionMatrix(3).merge(ConfusionMatrix(4))


def test_all_reduce_without_a_process_group_keeps_the_counts():
    cm = matrix_of([[0, 1]], [[0, 1]])
    before = cm.matrix.clone()
    cm.all_reduce()
    assert torch.equal(cm.matrix, before)


def _reduce_on_rank(rank: int, init_file: str, results: dict) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        cm = ConfusionMatrix(2)
        # rank 0 sees target 0 predicted 0; rank 1 sees target 1 predicted 0 twice.
        cm.update(torch.tensor([[[0]]]) if rank == 0 else torch.tensor([[[0, 0]]]),
                  torch.tensor([[[0]]]) if rank == 0 else torch.tensor([[[1, 1]]]))
        cm.all_reduce()
        results[rank] = cm.matrix.tolist()
    finally:
        dist.destroy_process_group()


def test_all_reduce_sums_over_ranks(tmp_path):
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_reduce_on_rank, args=(str(tmp_path / "init"), results), nprocs=2, join=True)
        assert dict(results) == {0: [[1, 0], [2, 0]], 1: [[1, 0], [2, 0]]}
