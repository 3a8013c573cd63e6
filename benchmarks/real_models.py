"""Real pretrained models and real images that packages ship in their wheels (nothing downloaded).

MediaPipe 0.10.14's wheel carries its models as TFLite files under ``mediapipe/modules``;
scikit-image's carries sample photographs under ``skimage/data``. Both are read from the
installed package's files without importing it (``.ci/run`` installs MediaPipe without its
runtime dependencies, which edgeprune does not need).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

MEDIAPIPE = "mediapipe==0.10.14"
# name -> (file in the mediapipe wheel, what it does)
TFLITE_MODELS = {
    "selfie_segmentation": ("mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
                            "person segmenter, MobileNetV3 encoder + transposed-conv decoder"),
    "face_detection": ("mediapipe/modules/face_detection/face_detection_short_range.tflite",
                       "BlazeFace face detector: anchors' boxes and scores"),
    "palm_detection": ("mediapipe/modules/palm_detection/palm_detection_lite.tflite",
                       "BlazePalm detector with PReLU and an FPN"),
    "hand_landmark": ("mediapipe/modules/hand_landmark/hand_landmark_lite.tflite",
                      "hand landmark regressor (21 points)"),
    "pose_detection": ("mediapipe/modules/pose_detection/pose_detection.tflite",
                       "BlazePose detector, float16 weights in TFLite's sparse format"),
}
# photographs with people (for the segmenter) and without, as scikit-image ships them
IMAGES = ("astronaut.png", "camera.png", "coffee.png", "chelsea.png")


def _package_file(distribution: str, relative: str, install: str) -> Path:
    try:
        path = Path(importlib.metadata.distribution(distribution).locate_file(relative))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"{relative} is not installed: pip install {install}")
    return path


def tflite_model(name: str) -> Path:
    """The installed file of model ``name`` of ``TFLITE_MODELS``."""
    return _package_file("mediapipe", TFLITE_MODELS[name][0], f"--no-deps {MEDIAPIPE}")


def image(name: str, height: int, width: int) -> np.ndarray:
    """Sample photograph ``name`` as float32 RGB in [0, 1], ``(1, height, width, 3)``."""
    from PIL import Image

    path = _package_file("scikit-image", f"skimage/data/{name}", "scikit-image")
    with Image.open(path) as picture:
        rgb = picture.convert("RGB").resize((width, height), Image.BILINEAR)
    return (np.asarray(rgb, dtype=np.float32) / 255.0)[None]
