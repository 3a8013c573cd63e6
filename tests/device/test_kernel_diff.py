"""Which kernel changed, on a real pair of builds that differ in one kernel's config."""

from edgeprune import compiler
from edgeprune.device.kernel_diff import kernel_diff
from edgeprune.device.regression import NO_CHANGE, SLOWER
from tests.device.conftest import SLOWED_FUNC


def test_the_kernel_with_the_poor_config_is_named_first(build_pair):
    diff = kernel_diff(build_pair.slowed, build_pair.old, threshold=1.05, rounds=20, threads=1)
    changed = diff.changed[0]
    # a neighbour may change a little (its input now comes from another schedule's writes), never as much
    assert all(abs(other.delta_ms) < changed.delta_ms / 3 for other in diff.changed[1:]), "\n".join(diff.lines())
    assert changed.key == build_pair.slowed_workload and changed.funcs == [SLOWED_FUNC] and changed.rule == "conv2d"
    assert changed.comparison.verdict == SLOWER and changed.comparison.ci_low > 1.5 and changed.delta_ms > 0
    assert changed.new_config["tile_co"] == 1 and changed.old_config["tile_co"] != 1
    assert "config changed: " in changed.describe() and "tile_co " in changed.describe()
    assert diff.shared[0] is changed  # the largest absolute change comes first
    assert {k.key for k in diff.shared} >= {build_pair.slowed_workload, "vm.builtin.*"}
    assert not diff.only_new and not diff.only_old
    assert diff.to_json()["changed"][0] == build_pair.slowed_workload


def test_a_rebuild_changes_no_kernel(build_pair):
    diff = kernel_diff(build_pair.same, build_pair.old, threshold=1.05, rounds=20, threads=1)
    assert diff.changed == [], "\n".join(diff.lines())
    assert all(k.new_config == k.old_config for k in diff.shared)
    assert len(diff.shared) >= 4 and diff.old_total_ms > 0
    assert sum(k.comparison.verdict != NO_CHANGE for k in diff.shared) <= 1  # a microsecond kernel may differ, unnamed


def test_kernels_of_other_shapes_are_listed_apart(build_pair, tmp_path):
    other = compiler.compile(build_pair.old.parent / "ckpt", out=tmp_path / "wide", input_shape=[1, 3, 96, 128])
    diff = kernel_diff(other, build_pair.old, threshold=1.05, rounds=8, threads=1)
    assert build_pair.slowed_workload in diff.only_old and len(diff.only_new) == len(diff.only_old) >= 3
    assert "only in NEW: " in "\n".join(diff.lines())
