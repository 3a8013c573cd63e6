"""``--device`` is parsed in one place, which gives the runner, the tuning key and the history key."""

from __future__ import annotations

import pytest

from edgeprune.base.errors import EdgepruneError
from edgeprune.device.runners import LocalRunner, RPCRunner
from edgeprune.device.spec import DeviceSpec


def test_local_device_keys_and_runner():
    spec = DeviceSpec.parse("local")
    assert spec.is_local and spec.tuning_key == "local" and spec.history_key.startswith("local:")
    assert isinstance(spec.runner(), LocalRunner)


def test_rpc_device_keys_name_the_kind_of_phone_not_the_tracker():
    a, b = DeviceSpec.parse("rpc://127.0.0.1:9190/s21"), DeviceSpec.parse("rpc://10.1.2.3:9000/s21")
    assert a.tuning_key == b.tuning_key == "s21" and a.history_key == b.history_key == "rpc:s21"
    runner = a.runner(timeout_s=3, priority=2)
    assert isinstance(runner, RPCRunner) and runner.timeout_s == 3 and runner.priority == 2
    assert str(a) == "rpc://127.0.0.1:9190/s21"


@pytest.mark.parametrize("text", ["gpu", "", "rpc://nowhere/s21", "rpc://host:9190/", "rpc://host:port/s21", "rpc://h:1/a/b"])
def test_anything_else_is_one_clear_error(text):
    with pytest.raises(EdgepruneError, match="--device"):
        DeviceSpec.parse(text)
