"""Channel groups found by ``pruning.coupling``: one focused net per coupling case, then the built-ins."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.coupling import ChannelGraph, Consumer, analyze, check_layer_names, default_prunable
from edgeprune.pruning.coupling.torch_pruning_check import torch_pruning_ties
from edgeprune.pruning.models import build_model
from tests.pruning import nets

X = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
X64 = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny inputs run faster on one thread, and stay fast when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def summary(graph: ChannelGraph) -> list[tuple[tuple[str, ...], int, bool]]:
    return [(g.producers, g.size, g.prunable) for g in graph.groups]


def by_producer(graph: ChannelGraph, name: str):
    (group,) = [g for g in graph.groups if name in g.producers]
    return group


def test_conv_bn_act_chain_masks_after_the_batchnorm():
    graph = analyze(nets.Chain(), X)
    assert summary(graph) == [(("conv1",), 8, True), (("conv2",), 12, True), (("head",), 4, False)]
    first, second, head = graph.groups
    assert first.mask_points == ("bn1",) and first.members == ("bn1",)
    assert first.consumers == (Consumer("conv2", 0),)
    assert second.mask_points == ("bn2",) and second.consumers == (Consumer("head", 0),)
    assert head.reason == "reaches the model output"
    assert head.mask_points == ("head",)  # no BN after it: the conv itself


def test_depthwise_conv_joins_the_group_it_reads():
    graph = analyze(nets.DepthwiseSeparable(), X)
    assert summary(graph) == [(("stem.0",), 8, True), (("pw.0",), 16, True), (("head",), 4, False)]
    stem = graph.groups[0]
    assert stem.members == ("stem.1", "dw.0", "dw.1")
    # BN(0) != 0 after the depth-wise conv too: its BN is masked as well.
    assert stem.mask_points == ("stem.1", "dw.1")
    assert stem.consumers == (Consumer("pw.0", 0),)
    dw = next(s for s in graph.sites if s.name == "dw.0")
    assert dw.depthwise and dw.groups == 8 and dw.out_group == 0 and dw.in_parts == ((0, 8),)


def test_inverted_residual_ties_both_branches_of_the_add():
    graph = analyze(nets.Inverted(), X)
    assert summary(graph) == [
        (("stem.0", "block1.conv.2.0"), 16, True),
        (("block1.conv.0.0",), 64, True),
        (("block2.conv.0.0",), 48, True),
        (("block2.conv.2.0",), 24, True),
        (("head",), 4, False),
    ]
    residual, hidden = graph.groups[:2]
    assert residual.mask_points == ("stem.1", "block1.conv.2.1")
    assert residual.consumers == (Consumer("block1.conv.0.0", 0), Consumer("block2.conv.0.0", 0))
    assert hidden.members == ("block1.conv.0.1", "block1.conv.1.0", "block1.conv.1.1")
    assert hidden.mask_points == ("block1.conv.0.1", "block1.conv.1.1")


def test_concat_parts_map_to_offsets_in_each_consumer():
    graph = analyze(nets.Concat(), X)
    assert summary(graph) == [
        (("a.0",), 8, True),
        (("b.1.0",), 12, True),
        (("fuse_ab.0", "fuse_ba.0"), 16, True),
        (("head",), 4, False),
    ]
    a, b = graph.groups[:2]
    assert a.consumers == (Consumer("fuse_ab.0", 0), Consumer("fuse_ba.0", 12))
    assert b.consumers == (Consumer("fuse_ab.0", 8), Consumer("fuse_ba.0", 0))
    sites = {s.name: s for s in graph.sites}
    assert sites["fuse_ab.0"].in_parts == ((0, 8), (1, 12))
    assert sites["fuse_ba.0"].in_parts == ((1, 12), (0, 8))


def test_channel_split_fixes_the_split_channels_but_not_its_parts():
    graph = analyze(nets.Split(), X)
    assert summary(graph) == [
        (("stem.0",), 16, False),
        (("conv_a.0",), 8, True),
        (("conv_b.0",), 8, True),
        (("head",), 4, False),
    ]
    assert graph.groups[0].reason == "split by channel counts fixed in the code (chunk in forward)"
    # The spatial split and concat along the height keep the channels: head reads both parts.
    assert graph.groups[1].consumers == (Consumer("head", 0),)
    assert graph.groups[2].consumers == (Consumer("head", 8),)


def test_a_slice_of_the_whole_channel_axis_keeps_the_concat_prunable():
    graph = analyze(nets.Ghost(), X)
    assert summary(graph) == [(("stem.0",), 8, True), (("primary.0",), 12, True), (("head",), 4, False)]
    primary = graph.groups[1]
    assert primary.members == ("primary.1", "cheap.0", "cheap.1")
    # The head reads the primary channels twice: as they are, and through the cheap conv.
    assert primary.consumers == (Consumer("head", 0), Consumer("head", 12))


@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_conv_keeps_its_input_and_output_whole(groups):
    graph = analyze(nets.Grouped(groups), X)
    assert summary(graph) == [
        (("conv1.0",), 16, False),
        (("grouped.0",), 16, False),
        (("conv3.0",), 8, True),
        (("head",), 4, False),
    ]
    assert graph.groups[0].reason == f"read by grouped conv (groups={groups}) grouped.0"
    assert graph.groups[1].reason == f"produced by grouped conv (groups={groups}) grouped.0"
    site = next(s for s in graph.sites if s.name == "grouped.0")
    assert site.groups == groups and not site.depthwise


def test_h_sigmoid_gated_injection_is_one_exact_group():
    """``local * h_sigmoid(global_act) + global_embedding``: h_sigmoid(0) = 0.5 multiplies a zero."""
    graph = analyze(nets.Injection(), X)
    assert summary(graph) == [
        (("stem.0",), 8, True),
        (("global_act.0", "global_embedding.0", "local_embedding.0"), 16, True),
        (("head",), 4, False),
    ]
    injected = graph.groups[1]
    assert injected.mask_points == ("global_act.1", "global_embedding.1", "local_embedding.1", "fuse.1")
    assert injected.consumers == (Consumer("head", 0),)


def test_paths_that_turn_a_pruned_channel_nonzero_are_not_prunable():
    graph = analyze(nets.NonzeroPaths(), X)
    assert summary(graph) == [
        (("sig.0",), 8, False),
        (("shifted.0",), 8, False),
        (("se_in.0", "se_expand"), 16, True),
        (("se_reduce",), 4, True),
        (("head",), 4, False),
    ]
    assert graph.groups[0].reason == "nonzero when pruned at the input of se_in.0 (after sigmoid in forward)"
    assert graph.groups[1].reason == "combined with fixed channels by add in forward"
    # Squeeze-excite: the gate's expand conv shares the gated channels; the gate is masked itself.
    assert graph.groups[2].mask_points == ("se_in.1", "se_expand")


def test_user_model_with_residuals_concat_and_linear():
    graph = analyze(nets.UserNet(), X)
    assert summary(graph) == [
        (("stem.0", "res1.1.0", "res2.1.0"), 16, True),
        (("res1.0.0",), 24, True),
        (("res2.0.0",), 32, True),
        (("down.0",), 24, True),
        (("side.1.0",), 8, True),
        (("mix.0",), 32, True),
        (("fc",), 5, False),
    ]
    assert graph.groups[4].consumers == (Consumer("mix.0", 24),)
    assert graph.groups[5].consumers == (Consumer("fc", 0),)  # through pooling and flatten
    assert graph.groups[6].reason == "reaches the model output"


def test_token_mlp_linears_read_the_last_axis():
    graph = analyze(nets.Tokens(), X)
    assert summary(graph) == [(("stem.0", "fc2"), 16, False), (("fc1",), 32, True), (("head",), 4, False)]
    assert graph.groups[0].reason == "unsupported module norm (LayerNorm)"
    assert graph.groups[1].mask_points == ("fc1",) and graph.groups[1].consumers == (Consumer("fc2", 0),)
    assert next(s for s in graph.sites if s.name == "fc1").macs_per_pair == 64  # tokens: (32 / 4)^2


def test_what_cannot_be_sliced_is_not_prunable():
    graph = analyze(nets.Unsliceable(), X)
    assert [(g.producers, g.reason) for g in graph.groups] == [
        (("a.0",), "unsupported module norm (GroupNorm)"),
        (("up",), "produced by transposed conv up"),
        (("shared.0",), "shared.0 is called more than once"),
        (("b.0",), ""),
        (("head",), "reaches the model output"),
    ]
    graph = analyze(nn.Sequential(nets.Unsliceable().a, nn.Flatten(), nn.Linear(16 * 32 * 32, 3)), X)
    assert graph.groups[0].reason == "reshaped by 1"


def test_untraceable_model_prunes_only_plain_chains():
    graph = analyze(nets.Untraceable(), X)
    assert summary(graph) == [(("conv1.0", "conv2.0"), 8, False), (("conv3.0",), 12, True), (("head",), 4, False)]
    assert graph.groups[0].reason.startswith("not traceable by torch.fx (TraceError")
    assert graph.groups[1].mask_points == ("conv3.1",)
    assert graph.groups[2].reason == "reaches the model output"


def test_per_layer_config_restricts_to_groups_whose_producers_it_names():
    graph = analyze(nets.Concat(), X, prunable=lambda name: name.startswith(("a.", "fuse_ab.")))
    assert [g.prunable for g in graph.groups] == [True, False, False, False]
    assert graph.groups[2].reason == "fuse_ba.0 is not among the prunable layers"


def test_per_layer_config_naming_a_missing_layer_is_a_user_error():
    model = nets.Concat()
    check_layer_names(model, ["a", "fuse_ab.0", "b.1"])
    with pytest.raises(EdgepruneError, match=r"layer 'fuse_abc' names no module of the model \(did you mean"):
        check_layer_names(model, ["a", "fuse_abc"])


@pytest.mark.parametrize(
    "make", [nets.Chain, nets.Inverted, nets.Concat, nets.Split, nets.Injection, nets.NonzeroPaths, nets.UserNet]
)
def test_site_macs_equal_flop_counter_conv_and_linear_macs(make):
    model = make()
    assert nets.site_macs(analyze(model, X)) == nets.conv_linear_macs(model, X)


def test_analysis_leaves_the_model_in_its_mode():
    model = nets.UserNet().train()
    model.res1.eval()
    analyze(model, X)
    assert model.training and not model.res1.training and model.res2.training


def test_wrong_input_shape_is_a_user_error():
    with pytest.raises(EdgepruneError, match=r"cannot run the model on an input of shape \(1, 4, 32, 32\)"):
        analyze(nets.Chain(), torch.zeros(1, 4, 32, 32))


def test_default_prunable_layers():
    assert default_prunable("topformer-tiny")("tpm.layers.3.conv.0.0")
    assert not default_prunable("topformer-tiny")("trans.0.mlp.fc1.0")
    assert default_prunable("deeplabv3plus-mbv2")("backbone.high.0.conv.0.0")
    assert not default_prunable("deeplabv3plus-mbv2")("aspp.project.0")
    assert default_prunable("my.models:net")("anything")


# --------------------------------------------------------------------------- built-in models


@pytest.fixture(scope="module")
def topformer_tiny():
    model = build_model("topformer-tiny")
    return model, analyze(model, X64, default_prunable("topformer-tiny"))


def test_topformer_tiny_token_pyramid_groups(topformer_tiny):
    model, graph = topformer_tiny
    prunable = [(g.producers, g.size) for g in graph.groups if g.prunable]
    assert prunable == [
        (("tpm.stem.0", "tpm.layers.0.conv.1.0"), 16),  # stem + block 0's residual (expand ratio 1)
        (("tpm.layers.1.conv.0.0",), 64),  # the expanded channels of blocks 1-8
        (("tpm.layers.2.conv.0.0",), 48),
        (("tpm.layers.3.conv.0.0",), 48),
        (("tpm.layers.4.conv.0.0",), 96),
        (("tpm.layers.5.conv.0.0",), 96),
        (("tpm.layers.6.conv.0.0",), 192),
        (("tpm.layers.7.conv.0.0",), 384),
        (("tpm.layers.8.conv.0.0",), 576),
    ]
    # The four pyramid outputs are concatenated into the transformer's residual stream, whose
    # convs write all 208 channels at once: only partly aligned, so fixed.
    levels = [by_producer(graph, f"tpm.layers.{i}.conv.2.0") for i in (2, 4, 6, 8)]
    assert [g.size for g in levels] == [16, 32, 64, 96]
    assert all(g.reason == "only partly aligned with trans.0.attn.proj.1.0 by add in trans.0" for g in levels)
    assert by_producer(graph, "trans.0.attn.to_q.0").reason == "reshaped by reshape in trans.0.attn"
    assert by_producer(graph, "head.cls_seg").reason == "reaches the model output"
    assert by_producer(graph, "trans.0.mlp.fc1.0").reason == "trans.0.mlp.fc1.0 is not among the prunable layers"


def test_topformer_tiny_every_structurally_prunable_group(topformer_tiny):
    model, _ = topformer_tiny
    graph = analyze(model, X64)
    extra = [(g.producers[0], g.size) for g in graph.groups if g.prunable and not g.producers[0].startswith("tpm.")]
    assert extra == [(f"trans.{i}.mlp.fc1.0", 416) for i in range(4)] + [("sim.0.local_embedding.0", 128)]
    injection = by_producer(graph, "sim.0.local_embedding.0")
    assert len(injection.producers) == 9 and injection.consumers == (Consumer("head.cls_seg", 0),)
    assert "head.linear_fuse.0" in injection.members  # Tiny's depth-wise linear_fuse
    assert nets.site_macs(graph) == nets.conv_linear_macs(model, X64)


def test_deeplabv3plus_backbone_groups():
    model = build_model("deeplabv3plus-mbv2")
    graph = analyze(model, X64, default_prunable("deeplabv3plus-mbv2"))
    prunable = [g for g in graph.groups if g.prunable]
    assert all(name.startswith("backbone.") for g in prunable for name in g.producers)
    stage_outputs = [g.size for g in prunable if "conv.2.0" in g.producers[0]]
    assert stage_outputs == [24, 32, 64, 96, 160, 320]
    assert [g.size for g in prunable if g.producers == ("backbone.low.0.0",)] == [32]
    assert [g.size for g in prunable if g.producers == ("backbone.low.1.conv.1.0",)] == [16]
    hidden = [g.size for g in prunable if g.producers[0].endswith("conv.0.0")]
    assert hidden == [96, 144, 144, 192, 192, 192, 384, 384, 384, 384, 576, 576, 576, 960, 960, 960]
    assert len(prunable) == 24
    last = by_producer(graph, "backbone.high.13.conv.2.0")
    # ASPP's depth-wise atrous convs slice along with the backbone's last stage.
    assert {"aspp.branches.1.0.0", "aspp.branches.2.0.0", "aspp.branches.3.0.0"} <= set(last.members)
    low = by_producer(graph, "backbone.low.3.conv.2.0")
    assert Consumer("decoder.low_level.0", 0) in low.consumers
    assert by_producer(graph, "aspp.project.0").reason == "decoder.fuse.0.0.0 spans channels of several groups"
    assert nets.site_macs(graph) == nets.conv_linear_macs(model, X64)
    # Torch-Pruning agrees on every backbone group.
    ties = torch_pruning_ties(model, X64, [g.producers[0] for g in prunable])
    assert sorted(map(sorted, ties)) == sorted(sorted(g.producers) for g in prunable)
