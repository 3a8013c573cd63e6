"""``edgeprune report``: every section from real inputs, self-contained, and rendered by headless Chromium."""

import json
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch

from edgeprune import compiler
from edgeprune.base.errors import EdgepruneError
from edgeprune.device.history import History, now_utc, run_from_measurement
from edgeprune.device.kernel_diff import KernelChange
from edgeprune.device.paired import paired_compare
from edgeprune.device.spec import DeviceSpec
from edgeprune.pruning.checkpoint import ArchInfo, read_arch, save_checkpoint
from edgeprune.pruning.data.synthetic import SYNTHETIC_CLASSES, SYNTHETIC_MEAN, SYNTHETIC_STD
from edgeprune.pruning.models import build_model
from edgeprune.pruning.prune import PruneConfig, prune
from edgeprune.report import ReportInputs, Table, write_report
from edgeprune.report.charts import PALETTE, SLOWER_COLOUR
from tests.compiler.checkpoints import make_checkpoint
from tests.device.test_history import make_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> ReportInputs:
    """An unpruned TopFormer-Tiny, its bi-level pruned checkpoint, a compiled artifact and its history."""
    root = tmp_path_factory.mktemp("report")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    arch = ArchInfo(model="topformer-tiny", num_classes=8, input_shape=[1, 3, 64, 64], mean=list(SYNTHETIC_MEAN),
                    std=list(SYNTHETIC_STD), class_names=list(SYNTHETIC_CLASSES))
    unpruned = save_checkpoint(root / "unpruned", build_model("topformer-tiny", num_classes=8).eval(), arch,
                               {"params": 1, "macs": 1, "miou": 0.125}, export=False)
    prune(PruneConfig(model="topformer-tiny", data="synthetic", out=root / "pruned", from_dir=unpruned,
                      target_gmacs=0.0045, iters=2, weight_steps=1, batch_size=2, crop_size=(64, 64),
                      input_size=(64, 64), val_images=2, workers=0, progress_interval_s=0))
    artifact = compiler.compile(make_checkpoint(root / "chain", "tests.pruning.nets:Chain", [1, 3, 32, 32]),
                                out=root / "chain-art")
    history = root / "h.sqlite"
    with History(history) as h:
        for _ in range(2):
            measured = DeviceSpec.parse("local").runner().measure(artifact, runs=20, warmup=2, threads=1)
            real = h.record(run_from_measurement(measured, artifact, "local", model="chain"))
        slower = make_run([t * 1.5 for t in real.stats.timings_ms], model="chain", key=real.device_key, target=real.target)
        h.record(replace(slower, time=now_utc()))  # an injected regression: drawn red
        h.record(make_run([1.0, 1.1, 1.2, 1.0, 1.05], model="other-model"))
    table = Table("Before and after pruning", ["", "before", "after"], [["GMACs", 0.0071, 0.0045], ["FPS", 700, 900]],
                  "from the demo")
    return ReportInputs(history=history, checkpoint=root / "pruned", unpruned=unpruned, artifact=artifact,
                        images=3, threads=1, tables=[table])


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.fixture(scope="module")
def page(inputs, tmp_path_factory) -> Path:
    return write_report(tmp_path_factory.mktemp("page") / "report.html", inputs)


def test_every_section_from_real_inputs(inputs, page):
    html = page.read_text()
    parser = Elements()
    parser.feed(html)
    tags = parser.tags
    # Self-contained: every reference is an inline data URI or an in-page anchor; no script at all.
    refs = [a[k] for _, a in tags for k in ("src", "href") if k in a]
    assert refs and all(r.startswith(("data:", "#")) for r in refs)
    assert not any(t == "script" or t == "link" for t, _ in tags)
    # Latency: one chart per (model, device), a point per run, the injected regression in red.
    assert html.count('<svg class="chart"') == 2 + 1 + 1  # two latency charts, kernels, widths
    runs = [a for t, a in tags if t == "circle" and a.get("class") == "run"]
    assert len(runs) == 4 and sum(a["fill"] == SLOWER_COLOUR for a in runs) == 1
    assert "chain on local:" in html and "other-model on local:ci" in html and ">slower</span>" in html
    # Kernels: the artifact's own kernels with the schedule rule that built them, and its run in the history.
    meta = json.loads((inputs.artifact / "meta.json").read_text())
    for schedule in meta["schedules"]:
        assert f"<code>{schedule['func']}</code>" in html
    assert "This artifact is the one of run #2" in html
    # Pruning: a before and an after bar for every layer that was narrowed.
    widths, before = read_arch(inputs.checkpoint).widths, read_arch(inputs.unpruned).widths
    narrowed = [n for n in widths if widths[n] != before[n]]
    assert narrowed and html.count('class="bar"') == 2 * len(narrowed) + sum(1 for _ in meta["schedules"]) + 1
    assert f"{widths[narrowed[0]]} channels" in html and "12.50%" in html  # unpruned mIoU from its report.json
    # Segmentation: image, ground truth, unpruned and pruned outputs for each of 3 images, all valid PNGs.
    images = [a["src"] for t, a in tags if t == "img"]
    assert len(images) == 3 * 4 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "Before and after pruning" in html and "from the demo" in html


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it): apt-get install chromium")
def test_renders_in_headless_chromium(page, tmp_path):
    def browse(url: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
             f"--user-data-dir={tmp_path / 'profile'}", *extra, url],
            capture_output=True, text=True, timeout=180,
        )

    # The error check can fail: a page with a script error shows up in the log.
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    assert "Uncaught ReferenceError" in browse(broken.as_uri(), "--dump-dom").stderr

    dom = browse(page.as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert dom.stdout.count("<svg") == 4 and dom.stdout.count("<circle") == 4 and dom.stdout.count("<img") == 12

    shot = tmp_path / "shot.png"
    result = browse(page.as_uri(), f"--screenshot={shot}", "--window-size=1000,4000", "--hide-scrollbars")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    # The charts were painted: their first palette colour (lines, kernel bars, "before" bars) and the red point.
    for colour, least in ((PALETTE[0], 2000), (SLOWER_COLOUR, 20)):
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - rgb).sum(1) < 30).sum() >= least, colour


def test_report_cli_and_bad_input(inputs, cli, tmp_path):
    out = tmp_path / "r.html"
    table = tmp_path / "t.json"
    table.write_text(json.dumps({"title": "Adreno check", "columns": ["kernel", "max error"], "rows": [["conv", 1e-6]]}))
    result = cli("report", "--history", str(inputs.history), "--table", str(table), "--out", str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert "Adreno check" in html and html.count('<svg class="chart"') == 2 and "Pruning" not in html

    with pytest.raises(EdgepruneError, match="nope.sqlite: no such history file"):
        write_report(tmp_path / "x.html", ReportInputs(history=tmp_path / "nope.sqlite"))
    with pytest.raises(EdgepruneError, match="nothing to report"):
        write_report(tmp_path / "x.html", ReportInputs())
    with pytest.raises(EdgepruneError, match="--unpruned needs --checkpoint"):
        write_report(tmp_path / "x.html", ReportInputs(history=inputs.history, unpruned=inputs.unpruned))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"title": "t", "columns": ["a", "b"], "rows": [["only one"]]}))
    result = cli("report", "--history", str(inputs.history), "--table", str(bad), "--out", str(tmp_path / "x.html"))
    assert result.returncode == 2 and "bad.json: 'rows' must be lists" in result.stderr
    assert not (tmp_path / "x.html").exists()


def test_ab_comparisons_are_marked_and_listed_with_their_kernels(tmp_path):
    rng = np.random.default_rng(0)
    old_rounds = list(1.0 + 0.02 * rng.random(40))
    new_rounds = [t * 1.2 for t in old_rounds]
    decision = paired_compare(new_rounds, old_rounds, threshold=1.05).to_json()
    kernel = KernelChange("conv2d 16->32 3x3/1 @32x32", ["fused_conv2d_add_relu"], "conv2d", {"tile_co": 1},
                          {"tile_co": 8}, paired_compare([0.6] * 10, [0.4] * 10, threshold=1.05))
    history = tmp_path / "h.sqlite"
    with History(history) as h:
        h.record(make_run(old_rounds))  # run 1: a plain run
        recorded = h.record_comparison(make_run(new_rounds, commit="b" * 40), make_run(old_rounds, commit="a" * 40),
                                       {**decision, "kernels_changed": [kernel.to_json()]})  # runs 2 (OLD), 3 (NEW)
        h.record_comparison(make_run(old_rounds), make_run(old_rounds), {**paired_compare(old_rounds, old_rounds, 1.05)
                                                                        .to_json(), "kernels_changed": None})  # 4, 5
        h.record(make_run(new_rounds))  # run 6: compared with NEW of the second A/B, not with its OLD
    assert (recorded.old.id, recorded.new.id) == (2, 3)
    html = write_report(tmp_path / "r.html", ReportInputs(history=history)).read_text()
    parser = Elements()
    parser.feed(html)
    points = [a for t, a in parser.tags if t == "circle" and a.get("class") == "run"]
    assert len(points) == 4  # runs 1, 3, 5, 6: the OLDs are references, not points of the line
    assert [a["fill"] == SLOWER_COLOUR for a in points] == [False, True, False, True]
    assert "A/B reference (OLD) of run #3" in html and "A/B reference (OLD) of run #5" in html
    assert "A/B vs run #2: <span class=\"slower\">slower</span>\n1.200x" in html
    assert ">slower</span>\n1.200x, p = " in html  # run 6 against run 5's 1.0x timings: the stored-baseline test
    section = html[html.index('<h2 id="ab">'):]
    assert section.count("<tr>") == 1 + 2 and "<code>fused_conv2d_add_relu: +0.200 ms (1.50x)</code>" in section
    assert "not compared" in section and "<code>bbbbbbbbbb</code>" in section and "<code>aaaaaaaaaa</code>" in section
