"""Saliency sources for EPS: class-agnostic foreground maps, float32 H x W in [0, 1].

Two kinds: maps stored on disk by an off-the-shelf model (``FolderSaliency``: PFAN, DSS, ...)
and OpenCV's unsupervised static saliency computed on the fly (``OpenCVSaliency``), which needs
no download and so serves the tests and the synthetic set. A data set reader holds one source and
calls ``source.load(image_id, image)``; only sources with ``needs_image`` use the image.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
from PIL import Image

from wsss.core.errors import DataError, ParamsError


class SaliencySource(ABC):
    """Where saliency maps come from."""

    #: True when ``load`` computes the map from the image (the caller must pass it).
    needs_image: bool = False

    @abstractmethod
    def load(self, image_id: str, image: np.ndarray | None = None) -> np.ndarray:
        """float32 H x W in [0, 1] for ``image_id``; DataError naming the id if unavailable."""

    @abstractmethod
    def describe(self, image_id: str) -> str:
        """Where the map of ``image_id`` comes from, for error messages."""


class FolderSaliency(SaliencySource):
    """Grayscale maps stored as ``<folder>/<id><suffix>``; 8-bit (/255) or 16-bit (/65535)."""

    def __init__(self, folder: str | os.PathLike, suffix: str = ".png"):
        self.folder = Path(folder)
        self.suffix = suffix
        if not self.folder.is_dir():
            raise DataError(f"{self.folder}: saliency folder not found")

    def path(self, image_id: str) -> Path:
        return self.folder / f"{image_id}{self.suffix}"

    def describe(self, image_id: str) -> str:
        return str(self.path(image_id))

    def load(self, image_id: str, image: np.ndarray | None = None) -> np.ndarray:
        path = self.path(image_id)
        # A missing map must fail loudly: silent zeros would teach EPS "no foreground here".
        if not path.is_file():
            raise DataError(f"image {image_id}: saliency map {path} not found")
        try:
            with Image.open(path) as pil:
                return _to_unit_float(pil, path)
        except DataError:
            raise
        except Exception as exc:  # PIL raises many types on corrupt files
            raise DataError(f"image {image_id}: cannot read saliency map {path} ({exc})") from None


def _to_unit_float(pil: Image.Image, path: Path) -> np.ndarray:
    if pil.mode in ("I;16", "I;16B", "I;16L"):
        return (np.array(pil, dtype=np.float64) / 65535.0).astype(np.float32)
    if pil.mode in ("L", "RGB", "RGBA", "LA"):
        # Some models save the map replicated over three channels; luminance recovers it.
        return np.array(pil.convert("L"), dtype=np.float32) / 255.0
    raise DataError(f"{path}: a saliency map must be an 8- or 16-bit grayscale PNG, got mode {pil.mode}")


OPENCV_METHODS = {
    "spectral_residual": "StaticSaliencySpectralResidual_create",
    "fine_grained": "StaticSaliencyFineGrained_create",
}


class OpenCVSaliency(SaliencySource):
    """OpenCV's unsupervised static saliency (opencv-contrib ``cv2.saliency``), min-max scaled."""

    needs_image = True

    def __init__(self, method: str = "spectral_residual"):
        if method not in OPENCV_METHODS:
            raise ParamsError(
                f"OpenCV saliency method {method!r} is unknown; choose one of {sorted(OPENCV_METHODS)}"
            )
        self.method = method

    def describe(self, image_id: str) -> str:
        return f"OpenCV {self.method} saliency"

    def load(self, image_id: str, image: np.ndarray | None = None) -> np.ndarray:
        if image is None:
            raise ValueError("OpenCVSaliency computes the map from the image: pass image=")
        import cv2  # local: only this source needs OpenCV

        # The detector is built per call: cv2 objects do not pickle into DataLoader workers.
        detector = getattr(cv2.saliency, OPENCV_METHODS[self.method])()
        bgr = np.ascontiguousarray(image[..., ::-1])
        ok, saliency = detector.computeSaliency(bgr)
        if not ok or saliency is None:
            raise DataError(f"image {image_id}: OpenCV {self.method} saliency failed")
        saliency = np.asarray(saliency, dtype=np.float32)
        height, width = image.shape[:2]
        if saliency.shape != (height, width):
            saliency = cv2.resize(saliency, (width, height), interpolation=cv2.INTER_LINEAR)
        return _min_max(saliency)


def _min_max(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant map has no salient region and becomes all zeros."""
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-12:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


def check_saliency_spec(spec) -> str | None:
    """Check a ``dataset.saliency`` value without touching files: None (no saliency), "opencv"
    or "folder"."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "none"):
        return None
    if not isinstance(spec, str) or not spec.strip():
        raise ParamsError(
            f"dataset.saliency = {spec!r}: expected null, 'none', 'opencv[:method]' or a folder path"
        )
    spec = spec.strip()
    if spec == "opencv" or spec.startswith("opencv:"):
        method = spec.partition(":")[2] or "spectral_residual"
        if method not in OPENCV_METHODS:
            raise ParamsError(
                f"dataset.saliency = {spec!r}: unknown OpenCV method {method!r}; "
                f"choose one of {sorted(OPENCV_METHODS)}"
            )
        return "opencv"
    return "folder"


def make_saliency_source(spec: str | None, dataset_root: str | os.PathLike) -> SaliencySource | None:
    """Build the source named by params ``dataset.saliency``.

    None / "none" -> no saliency; "opencv" or "opencv:<method>" -> OpenCVSaliency; anything
    else is a folder of maps, relative to ``dataset_root`` unless absolute.
    """
    kind = check_saliency_spec(spec)
    if kind is None:
        return None
    spec = spec.strip()
    if kind == "opencv":
        return OpenCVSaliency(spec.partition(":")[2] or "spectral_residual")
    folder = Path(spec)
    if not folder.is_absolute():
        folder = Path(dataset_root) / folder
    if not folder.is_dir():
        raise DataError(f"dataset.saliency = {spec!r}: saliency folder {folder} not found")
    return FolderSaliency(folder)


def load_checked(
    source: SaliencySource,
    image_id: str,
    image: np.ndarray | None,
    image_size: tuple[int, int],
) -> np.ndarray:
    """Load a map and check it matches the image size (H, W); readers call this."""
    saliency = source.load(image_id, image)
    if saliency.shape != tuple(image_size):
        raise DataError(
            f"image {image_id}: saliency map ({source.describe(image_id)}) is "
            f"{saliency.shape[0]}x{saliency.shape[1]} but the image is {image_size[0]}x{image_size[1]} (HxW)"
        )
    return saliency
