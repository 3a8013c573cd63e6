"""Which kernel changed: two host artifacts profiled per kernel in alternating rounds.

Kernels are matched across the two artifacts by their schedule's workload key (``meta.json``:
the op kind and shapes a rule scheduled), else by function name (kernels without a rule, and
VM builtins summed as ``vm.builtin.*``); several functions with one key are summed. Rounds are
timed as in ``device.ab``: each runs OLD, then NEW, each ``settle`` plain inferences and then
``per_round`` instrumented ones (``device.profile``), and takes each kernel's median. A kernel's
rounds then go through the same paired decision as the whole model (``device.paired``). A
kernel is named only when its change is significant, beyond the threshold, and at least
``min_share`` of OLD's whole inference: the two loads of one artifact can differ by a few
percent in a microsecond kernel (where its buffers landed), which explains no change of the
model. The VM's instrument calls back into this process, so this runs on this machine only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.compiler.artifact import load_artifact
from edgeprune.device.paired import PairedComparison, min_rounds, paired_compare
from edgeprune.device.profile import InstrumentedModel
from edgeprune.device.regression import NO_CHANGE


@dataclass(frozen=True)
class KernelChange:
    """One kernel key present in both artifacts, with the decision on its per-round times."""

    key: str
    funcs: list[str]  # NEW's function names under this key
    rule: str | None
    new_config: dict[str, Any] | None
    old_config: dict[str, Any] | None
    comparison: PairedComparison

    @property
    def delta_ms(self) -> float:
        return self.comparison.new_median_ms - self.comparison.old_median_ms

    def describe(self) -> str:
        config = ""
        if self.new_config != self.old_config:
            old, new = self.old_config or {}, self.new_config or {}
            knobs = [f"{k} {old.get(k, '-')}->{new.get(k, '-')}" for k in sorted(old.keys() | new.keys())
                     if old.get(k) != new.get(k)]
            config = f"; config changed: {', '.join(knobs)}"
        rule = f" ({self.rule})" if self.rule else ""
        return f"{', '.join(self.funcs)}{rule}: {self.comparison.describe()}, {self.delta_ms:+.3f} ms{config}"

    def to_json(self) -> dict:
        return {**asdict(self), "delta_ms": self.delta_ms}


MIN_SHARE = 0.01


@dataclass(frozen=True)
class KernelDiff:
    shared: list[KernelChange]  # every shared key, largest absolute change first
    old_total_ms: float  # OLD's kernels summed: one inference
    min_share: float = MIN_SHARE
    only_new: dict[str, float] = field(default_factory=dict)  # key -> median ms per inference
    only_old: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> list[KernelChange]:
        """The shared kernels whose time changed beyond noise and the threshold, by ``min_share`` of OLD at least."""
        return [k for k in self.shared
                if k.comparison.verdict != NO_CHANGE and abs(k.delta_ms) >= self.min_share * self.old_total_ms]

    def lines(self, limit: int = 10) -> list[str]:
        out = [f"kernels: {len(self.shared)} shared, {len(self.only_new)} only in NEW, {len(self.only_old)} only in OLD; "
               f"{len(self.changed)} changed beyond noise (and by {self.min_share:.0%} of OLD's {self.old_total_ms:.3f} ms)"]
        out += [f"  changed: {k.describe()}" for k in self.changed[:limit]]
        for title, only in (("only in NEW", self.only_new), ("only in OLD", self.only_old)):
            if only:
                top = sorted(only.items(), key=lambda kv: -kv[1])[:limit]
                out.append(f"  {title}: " + ", ".join(f"{key} ({ms:.3f} ms)" for key, ms in top))
        return out

    def to_json(self) -> dict:
        return {"shared": [k.to_json() for k in self.shared], "changed": [k.key for k in self.changed],
                "old_total_ms": self.old_total_ms, "min_share": self.min_share,
                "only_new": self.only_new, "only_old": self.only_old}


class _Profiled:
    """One artifact's instrumented model and how its functions map to kernel keys."""

    def __init__(self, path: Path, threads: int | None) -> None:
        artifact = load_artifact(path, num_threads=threads)
        self.model = InstrumentedModel(artifact)
        self.schedules = {s["func"]: s for s in artifact.meta.schedules}
        self.funcs: dict[str, list[str]] = defaultdict(list)

    def key(self, func: str) -> str:
        workload = self.schedules.get(func, {}).get("workload")
        return workload or func

    def infer(self) -> dict[str, float]:
        """Milliseconds per kernel key in one inference."""
        per_key: dict[str, float] = defaultdict(float)
        for func, ms in self.model.infer().items():
            key = self.key(func)
            per_key[key] += ms
            if func not in self.funcs[key]:
                self.funcs[key].append(func)
        return per_key

    def schedule(self, key: str) -> dict[str, Any]:
        for func in self.funcs.get(key, []):
            if func in self.schedules:
                return self.schedules[func]
        return {}


def kernel_diff(new: Path, old: Path, threshold: float, rounds: int = 30, per_round: int = 3, settle: int = 3,
                warmup: int = 3, threads: int | None = None, min_share: float = MIN_SHARE,
                on_round: Callable[[int, int], None] | None = None) -> KernelDiff:
    """Per-kernel A/B of two host artifacts: see the module docstring. ``on_round(done, rounds)``
    is called after every round."""
    rounds = max(rounds, min_rounds())
    profiled = {"old": _Profiled(old, threads), "new": _Profiled(new, threads)}
    for p in profiled.values():
        p.model.warm_up(warmup)
    per_round_ms: dict[str, dict[str, list[float]]] = {"old": defaultdict(list), "new": defaultdict(list)}
    for i in range(rounds):
        for name in ("old", "new"):
            profiled[name].model.warm_up(settle)
            with profiled[name].model:
                runs = [profiled[name].infer() for _ in range(per_round)]
            for key in set().union(*runs):
                per_round_ms[name][key].append(float(np.median([run.get(key, 0.0) for run in runs])))
        if on_round is not None:
            on_round(i + 1, rounds)

    new_ms, old_ms = per_round_ms["new"], per_round_ms["old"]
    shared = []
    for key in new_ms.keys() & old_ms.keys():
        if any(len(ms[key]) != rounds or min(ms[key]) <= 0.0 for ms in (new_ms, old_ms)):
            continue  # a kernel some rounds skip (none today: the VM's calls are static)
        new_schedule, old_schedule = profiled["new"].schedule(key), profiled["old"].schedule(key)
        shared.append(KernelChange(
            key=key, funcs=profiled["new"].funcs[key], rule=new_schedule.get("rule"),
            new_config=new_schedule.get("config"), old_config=old_schedule.get("config"),
            comparison=paired_compare(new_ms[key], old_ms[key], threshold),
        ))
    shared.sort(key=lambda k: -abs(k.delta_ms))
    median = {name: {key: float(np.median(v)) for key, v in ms.items()} for name, ms in per_round_ms.items()}
    return KernelDiff(
        shared=shared, old_total_ms=sum(median["old"].values()), min_share=min_share,
        only_new={k: v for k, v in median["new"].items() if k not in old_ms},
        only_old={k: v for k, v in median["old"].items() if k not in new_ms},
    )
