"""Real pretrained TFLite models: edgeprune against LiteRT (XNNPACK) on real photographs.

    python benchmarks/tflite_vs_litert.py [--models selfie_segmentation,...] [--rounds 15]
                                          [--threads N] [--json benchmarks/results/tflite_vs_litert.json]

Every model of ``benchmarks.real_models.TFLITE_MODELS`` (MediaPipe's, from its wheel) is compiled
with ``edgeprune compile model.tflite`` for the host and run beside LiteRT's interpreter with
its XNNPACK delegate at the same thread count:

- max error over LiteRT's output scale, per output, worst over scikit-image's photographs;
- for the segmenter, the share of pixels whose mask (probability > 0.5) agrees;
- latency: paired ratios of alternating rounds (``base.timing.paired_ratios``), edgeprune over
  LiteRT. These models ship as TFLite only; no ONNX twin is timed (converting one with tf2onnx
  would measure the converter as much as the runtimes).

Anchors: the issue's bounds, error <= 1e-4 of the output scale and mask agreement >= 99.9%;
latency is printed beside LiteRT's.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.real_models import IMAGES, TFLITE_MODELS, image, tflite_model  # noqa: E402
from edgeprune import compiler  # noqa: E402
from edgeprune.base.fileio import write_json  # noqa: E402
from edgeprune.base.timing import paired_ratios  # noqa: E402
from edgeprune.compiler.artifact import load_artifact, read_meta  # noqa: E402
from edgeprune.compiler.target import host_cores  # noqa: E402
from edgeprune.device.compare import alternate, litert_engine  # noqa: E402

DEFAULT_JSON = REPO / "benchmarks" / "results" / "tflite_vs_litert.json"
GOALS = {"max_rel_error": 1e-4, "min_mask_agreement": 0.999}
SEGMENTERS = ("selfie_segmentation",)
RUNS = 3


def measure(name: str, work: Path, rounds: int, threads: int) -> dict:
    path = tflite_model(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        artifact_dir = compiler.compile(path, out=work / name)
    meta = read_meta(artifact_dir)
    artifact = load_artifact(artifact_dir, num_threads=threads)
    litert = litert_engine(path, threads)
    _, height, width, _ = artifact.inputs[0].shape
    row: dict = {"model": name, "what": TFLITE_MODELS[name][1], "input": list(artifact.inputs[0].shape),
                 "compile_s": round(meta.compile_seconds, 1), "rules": dict(Counter(s["rule"] for s in meta.schedules)),
                 "conv_fallbacks": [s["func"] for s in meta.schedules if s["rule"] == "generic" and "conv" in s["func"]]}
    errors, agreements = [], []
    for picture in IMAGES:
        x = image(picture, height, width)
        ours = artifact(x)
        ours = ours if isinstance(ours, tuple) else (ours,)
        theirs = litert(x)
        errors.append(max(float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-12)) for a, b in zip(ours, theirs)))
        if name in SEGMENTERS:
            agreements.append(float(np.mean((ours[0] > 0.5) == (theirs[0] > 0.5))))
    row["max_rel_error"] = max(errors)
    row["max_rel_error_per_image"] = dict(zip(IMAGES, errors))
    if agreements:
        row["mask_agreement"] = min(agreements)
    x = image(IMAGES[0], height, width)
    times = alternate({"edgeprune": artifact, "litert_xnnpack": litert}, x, rounds, RUNS)
    row["median_ms"] = {engine: round(float(np.median(t)), 3) for engine, t in times.items()}
    row["ratio_to_litert"] = round(paired_ratios(times, "litert_xnnpack", RUNS)["edgeprune"], 3)
    row["goals"] = {"max_rel_error": row["max_rel_error"] <= GOALS["max_rel_error"],
                    **({"min_mask_agreement": row["mask_agreement"] >= GOALS["min_mask_agreement"]} if agreements else {})}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", help=f"comma-separated names (default: all of {', '.join(TFLITE_MODELS)})")
    parser.add_argument("--rounds", type=int, default=15, help="alternating timing rounds per model")
    parser.add_argument("--threads", type=int, default=host_cores())
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    names = args.models.split(",") if args.models else list(TFLITE_MODELS)
    unknown = [n for n in names if n not in TFLITE_MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(TFLITE_MODELS)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeprune-tflite-") as tmp:
        for name in names:
            row = measure(name, Path(tmp), args.rounds, args.threads)
            rows.append(row)
            agreement = (f"  mask {row['mask_agreement']:.5f} (anchor >= {GOALS['min_mask_agreement']})"
                         if "mask_agreement" in row else "")
            print(f"{name:<20} err {row['max_rel_error']:.2e} (anchor <= {GOALS['max_rel_error']:.0e}){agreement}  "
                  f"edgeprune {row['median_ms']['edgeprune']:.2f} ms  LiteRT-XNNPACK {row['median_ms']['litert_xnnpack']:.2f} ms"
                  f"  x LiteRT {row['ratio_to_litert']:.2f}  conv fallbacks {len(row['conv_fallbacks'])}", flush=True)
    write_json(args.json, {"machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads},
                           "goals": GOALS, "rounds": args.rounds, "images": list(IMAGES), "models": rows})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
