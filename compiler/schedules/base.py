"""The schedule-rule interface the registry and the tuner share, and helpers the rules use.

A rule (``Rule``) recognises one kind of PrimFunc (after FuseTIR), describes it as a
``Workload`` (op kind + shapes + dtype, with a stable string key), declares the knob space of
its schedule for that workload (knob name -> allowed values), proposes a default config,
schedules the PrimFunc with any config drawn from the space, and knows the workload's FLOPs
and a short label for tables. Every config in the space must give a correct program; configs
differ only in speed. CPU rules are ``ScheduleRule``s, written as transformations of one
``s_tir.Schedule``; GPU rules (``schedules.gpu``) are the same interface over dlight's rules.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import tvm
import tvm_ffi
from tvm import s_tir, sym

from edgeprune.compiler.target import Hardware

Config = dict[str, Any]
Space = dict[str, list[Any]]

# Max multiply-adds one unrolled micro-kernel body may hold: bigger bodies compile slowly
# (LLVM's compile time grows with the unrolled body) and spill registers anyway.
MAX_UNROLLED_FMAS = 256


class NotApplicable(Exception):
    """A rule cannot schedule this PrimFunc (raised from ``matches`` helpers or ``apply``); the
    registry records why and schedules it with the next rule that matches."""


class DoesNotMatch(NotApplicable):
    """A rule that can only tell by trying (dlight's) found the PrimFunc is not its kind: the
    next rule is tried and nothing is recorded."""


@dataclass(frozen=True)
class Workload:
    """What a rule schedules: the op kind, its shape facts and dtype.

    ``params`` holds integers only, in a fixed order per op, so ``key`` is stable across runs
    and processes; ``anchor`` (the block the schedule is built around) is not part of the key.
    """

    op: str
    params: tuple[tuple[str, int], ...]
    dtype: str
    anchor: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        shape = ",".join(f"{k}={v}" for k, v in self.params)
        return f"{self.op}({shape}):{self.dtype}"

    def __getitem__(self, name: str) -> int:
        for k, v in self.params:
            if k == name:
                return v
        raise KeyError(name)


class Rule(ABC):
    """One parameterised schedule for one kind of PrimFunc; instantiated per target."""

    name: str = ""

    @abstractmethod
    def matches(self, func: tvm.tirx.PrimFunc) -> Workload | None:
        """The workload of ``func`` if this rule schedules it, else ``None``."""

    @abstractmethod
    def space(self, wl: Workload) -> Space:
        """Knob name -> allowed values; the default config is drawn from it."""

    @abstractmethod
    def default(self, wl: Workload) -> Config:
        """A good config without tuning."""

    @abstractmethod
    def schedule(self, func: tvm.tirx.PrimFunc, wl: Workload, config: Config) -> tvm.tirx.PrimFunc:
        """``func`` scheduled with ``config``; raises ``NotApplicable`` when the rule cannot."""

    def wasted(self, wl: Workload, config: Config) -> str | None:
        """Why ``config`` (valid knob by knob) is not worth building for ``wl``, or ``None``.

        The tuner skips such configs before building: unrolled bodies above
        ``MAX_UNROLLED_FMAS`` (slow to compile, and they spill registers anyway),
        tiles wider than the axis they tile, vector widths the rule would not use (another
        config's duplicate).
        """
        return None

    def flops(self, wl: Workload) -> float | None:
        """Floating-point operations of one call (multiply-add = 2), where the rule knows them."""
        return None

    def short_name(self, wl: Workload) -> str:
        """A compact label for tables and progress lines (the key stays the identity)."""
        shape = "x".join(str(v) for k, v in wl.params if k != "hash")
        return f"{wl.op} {shape}"

    def check_config(self, wl: Workload, config: Config) -> Config:
        """``config`` completed with defaults; raises ``ValueError`` on a value outside the space."""
        space = self.space(wl)
        full = {**self.default(wl), **config}
        for knob, value in full.items():
            if knob not in space:
                raise ValueError(f"{self.name}: unknown knob {knob!r}")
            if value not in space[knob]:
                raise ValueError(f"{self.name}: {knob}={value!r} not in {space[knob]}")
        return full


class ScheduleRule(Rule):
    """A CPU rule: ``apply`` transforms one ``s_tir.Schedule`` of the matched PrimFunc."""

    def __init__(self, hw: Hardware) -> None:
        self.hw = hw

    @abstractmethod
    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        """Schedule ``sch`` (holding the matched PrimFunc as ``main``) with ``config``."""

    def schedule(self, func: tvm.tirx.PrimFunc, wl: Workload, config: Config) -> tvm.tirx.PrimFunc:
        sch = s_tir.Schedule(func)
        self.apply(sch, wl, config)
        return sch.mod["main"]


def conv_flops(wl: Workload) -> float:
    """FLOPs of one call of a (grouped) conv workload: ``n, ci, co, oh, ow, kh, kw, groups``."""
    return 2.0 * wl["n"] * wl["co"] * wl["oh"] * wl["ow"] * (wl["ci"] // wl["groups"]) * wl["kh"] * wl["kw"]


def conv_short_name(wl: Workload) -> str:
    """``conv2d_1x1 16->32 1x1/1 @8x8`` (and ``gG`` for grouped, not depth-wise, convs)."""
    groups = f" g{wl['groups']}" if 1 < wl["groups"] < wl["ci"] else ""
    return f"{wl.op} {wl['ci']}->{wl['co']} {wl['kh']}x{wl['kw']}/{wl['sh']}{groups} @{wl['oh']}x{wl['ow']}"


def output_workload(op: str, func: tvm.tirx.PrimFunc) -> Workload:
    """A workload known only by the output's shape and dtype, for rules that take any PrimFunc;
    different functions can share an output shape, so their structural hash keeps keys apart."""
    params = tuple((f"d{i}", int(d)) for i, d in enumerate(func.params[-1].shape))
    fingerprint = tvm_ffi.structural_hash(func) & 0xFFFFFFFF
    return Workload(op, params + (("hash", fingerprint),), str(func.params[-1].dtype))


# --- helpers over PrimFuncs and schedules -----------------------------------------------------

def blocks_of(sch: s_tir.Schedule) -> list[s_tir.schedule.SBlockRV]:
    """All blocks of ``main`` (root excluded), in program order."""
    found = []
    pending = list(sch.get_child_blocks(sch.get_sblock("root")))
    while pending:
        block = pending.pop(0)
        found.append(block)
        pending[:0] = list(sch.get_child_blocks(block))
    return found


def block_named(sch: s_tir.Schedule, names: tuple[str, ...]) -> s_tir.schedule.SBlockRV | None:
    """The first block whose name is in ``names``."""
    for block in blocks_of(sch):
        if sch.get(block).name_hint in names:
            return block
    return None


def extents(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV) -> list[int] | None:
    """Extents of the block's iteration variables, in order; ``None`` if any is not constant."""
    found = [iv.dom.extent for iv in sch.get(block).iter_vars]
    if not all(isinstance(e, tvm.tirx.IntImm) for e in found):
        return None
    return [int(e) for e in found]


def iter_kinds(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV) -> str:
    """One letter per iteration variable: S spatial, R reduction, O other."""
    kinds = {0: "S", 2: "R"}
    return "".join(kinds.get(int(iv.iter_type), "O") for iv in sch.get(block).iter_vars)


def is_output(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV) -> bool:
    return any(sch.get(b).same_as(sch.get(block)) for b in sch.get_output_blocks(sch.get_sblock("root")))


def inline_epilogue(sch: s_tir.Schedule, anchor: s_tir.schedule.SBlockRV,
                    under_anchor: bool = True) -> s_tir.schedule.SBlockRV | None:
    """Inline every elementwise block after ``anchor`` into the last one; return that block.

    ``None`` when the anchor writes the output itself. Raises ``NotApplicable`` when the
    consumers do not reduce to a single output block (then the caller cannot tile them with
    the anchor), or, for a caller that moves that block under the anchor's loops
    (``under_anchor``), when it has points that read none of the anchor's results.
    """
    anchor_name = sch.get(anchor).name_hint
    while True:
        if not sch.get_consumers(anchor):
            return None
        candidates = [b for b in downstream_blocks(sch, anchor) if sch.get(b).name_hint != anchor_name and not is_output(sch, b)]
        if not any(try_inline(sch, b) for b in candidates + _side_inputs(sch, anchor)):
            break
    rest = downstream_blocks(sch, anchor)
    if len(rest) != 1 or not is_output(sch, rest[0]):
        raise NotApplicable(f"epilogue of {anchor_name} does not reduce to one output block")
    if under_anchor and reads_past(sch, rest[0], sch.get(anchor).writes[0].source):
        raise NotApplicable(f"epilogue of {anchor_name} writes points that read none of its results (a pad)")
    return rest[0]


def reads_past(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV, buffer: tvm.tirx.Buffer) -> bool:
    """Whether ``block`` reads ``buffer`` outside its shape over the block's domain.

    A pad inlined into an epilogue (BlazeFace's channel padding after a pool) guards its reads
    with ``if_then_else``: the output block then spans more points than the anchor computes,
    and moving it under the anchor's loops would leave those points unwritten.
    """
    stmt = sch.get(block)
    analyzer = sym.Analyzer()
    for iv in stmt.iter_vars:
        analyzer.bind(iv.var, iv.dom)
    for region in stmt.reads:
        if not region.source.same_as(buffer):
            continue
        for r, extent in zip(region.region, buffer.shape):
            if analyzer.const_int_bound(r.min).min_value < 0 or \
                    analyzer.const_int_bound(r.min + r.extent - 1).max_value >= int(extent):
                return True
    return False


def try_inline(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV) -> bool:
    """``compute_inline(block)`` if TVM allows it; whether it did."""
    try:
        sch.compute_inline(block)
    except s_tir.schedule.ScheduleError:
        return False
    return True


def _side_inputs(sch: s_tir.Schedule, anchor: s_tir.schedule.SBlockRV) -> list[s_tir.schedule.SBlockRV]:
    """Blocks that feed the epilogue without depending on the anchor.

    TopFormer's injection module fuses ``conv1x1(local) * resize(gate) + resize(global)``: the
    two resizes (their height passes, ``passes.separable_resize``) are side inputs of the
    epilogue. Until they are inlined into it, the epilogue cannot be moved under the conv's tile
    loops (its producers must all be there).
    """
    downstream = {sch.get(b).name_hint for b in downstream_blocks(sch, anchor)}
    upstream: set[str] = set()
    frontier = [anchor]
    while frontier:
        block = frontier.pop()
        name = sch.get(block).name_hint
        if name not in upstream:
            upstream.add(name)
            frontier.extend(sch.get_producers(block))
    found = []
    for block in downstream_blocks(sch, anchor):
        for producer in sch.get_producers(block):
            name = sch.get(producer).name_hint
            if name not in downstream and name not in upstream and name not in {sch.get(f).name_hint for f in found}:
                found.append(producer)
    return found


def downstream_blocks(sch: s_tir.Schedule, anchor: s_tir.schedule.SBlockRV) -> list[s_tir.schedule.SBlockRV]:
    """Blocks reachable from ``anchor`` through consumer edges (anchor excluded)."""
    seen: list[s_tir.schedule.SBlockRV] = []
    names: set[str] = set()
    frontier = list(sch.get_consumers(anchor))
    while frontier:
        block = frontier.pop(0)
        name = sch.get(block).name_hint
        if name in names:
            continue
        names.add(name)
        seen.append(block)
        frontier.extend(sch.get_consumers(block))
    return seen


def full_size_side_inputs(func: tvm.tirx.PrimFunc, anchor_name: str) -> int:
    """How many of ``func``'s inputs of the output's shape the anchor's epilogue reads (residuals,
    TopFormer's injected features): maps streamed from memory next to the conv's own result."""
    sch = s_tir.Schedule(func)
    anchor = block_named(sch, (anchor_name,))
    params = list(func.params)
    out_shape = [int(d) for d in params[-1].shape]
    inputs = [b for b in params[:-1] if [int(d) for d in b.shape] == out_shape]
    read = [r.source for block in downstream_blocks(sch, anchor) for r in sch.get(block).reads]
    return sum(any(b.same_as(r) for r in read) for b in inputs)


def place_epilogue(sch: s_tir.Schedule, out: s_tir.schedule.SBlockRV | None, loop: s_tir.schedule.LoopRV, vec: int,
                   vectorize: Callable[[s_tir.schedule.LoopRV], None] | None = None) -> None:
    """Run the epilogue block ``out`` (``inline_epilogue``'s result) under ``loop``, its innermost
    loop in vectors of ``vec``: it then reads the tile while the tile is still in registers or L1,
    instead of the whole result coming back from memory. ``vectorize`` replaces
    ``sch.vectorize`` (for rules that must leave some loops scalar)."""
    if out is None:
        return
    sch.reverse_compute_at(out, loop)
    _, inner = sch.split(sch.get_loops(out)[-1], [None, vec])
    (vectorize or sch.vectorize)(inner)


def round_up(n: int, multiple: int) -> int:
    return math.ceil(n / multiple) * multiple


def row_tiles_wasted(wl: Workload, config: Config) -> str | None:
    """``wasted`` for conv rules tiling output rows by ``nvec x vec`` columns and ``tile_y`` rows."""
    if config["nvec"] > 1 and config["nvec"] * config["vec"] > round_up(wl["ow"], config["vec"]):
        return "row tile wider than the output row"
    return band_wasted(wl, config)


def band_wasted(wl: Workload, config: Config, row_width: int | None = None, narrowest_vec: int = 1) -> str | None:
    """``wasted`` for rules computing bands of ``tile_y`` output rows (``dw_rows`` at a time, if
    they have that knob) in vectors of ``vec`` across rows of ``row_width`` columns (default
    ``ow``); a vector wider than the rows is wasted unless it is the narrowest choice."""
    if config.get("dw_rows", 1) > config["tile_y"]:
        return "depthwise register rows taller than the band"
    if config["tile_y"] > 1 and config["tile_y"] > wl["oh"]:
        return "row band taller than the output"
    if row_width is not None and config["vec"] > row_width and config["vec"] > narrowest_vec:
        return "vector wider than the rows"
    return None


def divisors(n: int, limit: int | None = None) -> list[int]:
    return [d for d in range(1, (limit or n) + 1) if n % d == 0]


def vector_choices(hw: Hardware) -> list[int]:
    """Vector lengths worth trying: the native width, and halves of it down to 4 lanes."""
    lanes, out = hw.vector_lanes, []
    while lanes >= 4:
        out.append(lanes)
        lanes //= 2
    return sorted(out) or [1]


def pick(values: list[int], score: Callable[[int], float]) -> int:
    """The value with the best (highest) score; the first one on ties."""
    return max(values, key=lambda v: (score(v), -values.index(v)))
