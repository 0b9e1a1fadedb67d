"""Plain artifact formats, written atomically (write beside, then rename).

- masks: palette PNGs, VOC palette, 255 = ignore;
- score maps: one ``.npz`` per image holding ``scores`` (fp16, K x H x W) and ``class_ids``
  (int16, K) -- the ids of the foreground classes the K maps belong to -- and, for methods that
  predict one, ``background`` (fp16, H x W);
- JSON for metrics and indexes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
from PIL import Image

from wsss.core.errors import DataError
from wsss.core.processes import owner_gone, owner_id


def voc_palette() -> list[int]:
    """The 256-entry PASCAL VOC colour map (bit-interleaved), flattened RGB."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette.extend([r, g, b])
    return palette


# A temporary output is named after its owner process, ``.<name>.<owner>~<random>.tmp``, so that
# a later writer in the same folder can tell a killed writer's leftover (owner gone: removed)
# from a concurrent writer's work in progress (owner alive: kept).
_TEMP_OWNER = re.compile(r"\.(?P<owner>\d+-\d+@[A-Za-z0-9._-]+)~[^~]*\.tmp")
_swept: set[tuple[int, Path]] = set()  # (pid, folder): swept once per process and folder


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{owner_id()}~"


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary outputs in ``folder`` whose writer died (SIGKILL, power loss) on
    this host; those of running processes and of other hosts stay. Returns what was removed."""
    removed = []
    for tmp in Path(folder).glob(".*~*.tmp*"):
        match = _TEMP_OWNER.search(tmp.name)
        if match is None or not owner_gone(match["owner"]):
            continue
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _sweep_once(folder: Path) -> None:
    """remove_stale_temps, once per process and folder: a stage writing thousands of files
    into one folder scans it once."""
    key = (os.getpid(), folder.resolve())
    if key not in _swept:
        remove_stale_temps(folder)
        _swept.add(key)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; it replaces ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(path.parent)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def write_palette_png(path: str | os.PathLike, mask: np.ndarray) -> None:
    """Save a label mask (H x W, values 0..254 or 255) as a VOC palette PNG, atomically."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{path}: a mask must be 2-D, got shape {mask.shape}")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f"{path}: mask values must lie in 0..255")
    image = Image.fromarray(mask.astype(np.uint8), mode="P")
    image.putpalette(voc_palette())
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read a label PNG (palette or grayscale) as the raw index values, uint8 H x W."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise DataError(
                    f"{path}: a label mask must be a palette (P) or grayscale (L) PNG, "
                    f"got mode {image.mode}"
                )
            return np.array(image, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: mask file not found") from None
    except DataError:
        raise
    except Exception as exc:  # PIL raises many types on corrupt files
        raise DataError(f"{path}: cannot read mask ({exc})") from None


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image as uint8 H x W x 3 RGB; a clear DataError if missing or corrupt."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return np.array(image.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except Exception as exc:
        raise DataError(f"{path}: cannot decode image ({exc})") from None


def load_checkpoint(path: str | os.PathLike, remedy: str = "re-run the stage that writes it") -> dict:
    """torch.load of a saved state dict (tensors only, onto the CPU); a missing, truncated or
    corrupt file is a DataError naming the file and ending with ``remedy``."""
    import torch

    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: checkpoint not found; {remedy}") from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError... on bad files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read checkpoint, truncated or corrupt ({reason}); {remedy}") from None
    if not isinstance(state, dict):
        raise DataError(f"{path}: expected a state dict, got {type(state).__name__}; {remedy}")
    return state


def load_weights(module, path: str | os.PathLike, remedy: str = "re-run the stage that writes it") -> None:
    """``module.load_state_dict`` from a checkpoint file; a file that does not fit the module
    (written for other params) is a DataError naming the file, like a corrupt one."""
    state = load_checkpoint(path, remedy)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DataError(f"{path}: checkpoint does not fit the model params.yaml describes ({first}); {remedy}") from None


def save_state_dict(path: str | os.PathLike, state: dict) -> None:
    """torch.save, atomically and byte-reproducibly.

    Saving through a file object fixes the archive's inner folder name (torch otherwise takes
    it from the file name, here a random temporary one), so identical weights give identical
    bytes and DVC sees an unchanged output.
    """
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(state, handle)


class ScoreMap(NamedTuple):
    """One image's seeds: K foreground maps, their class ids, and the method's own background
    map (H x W) when it predicts one (SIPE, AE-SIPE), else None (a constant threshold applies)."""

    scores: np.ndarray
    class_ids: np.ndarray
    background: np.ndarray | None = None


def save_score_map(path: str | os.PathLike, scores: np.ndarray, class_ids: np.ndarray,
                   background: np.ndarray | None = None) -> None:
    """Store K score maps (K x H x W) in fp16 with the K foreground class ids they belong to,
    and optionally a background map (H x W)."""
    scores = np.asarray(scores)
    class_ids = np.asarray(class_ids, dtype=np.int16).reshape(-1)
    if scores.ndim != 3 or scores.shape[0] != class_ids.shape[0]:
        raise ValueError(
            f"{path}: scores must be K x H x W with K = len(class_ids); got {scores.shape} "
            f"for {class_ids.shape[0]} class ids"
        )
    arrays = {"scores": scores.astype(np.float16), "class_ids": class_ids}
    if background is not None:
        background = np.asarray(background)
        if background.shape != scores.shape[1:]:
            raise ValueError(f"{path}: background map {background.shape} differs from the scores' {scores.shape[1:]}")
        arrays["background"] = background.astype(np.float16)
    if not all(np.isfinite(a).all() for a in (scores, background) if a is not None):
        raise ValueError(f"{path}: score map holds NaN or inf")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def load_score_map(path: str | os.PathLike) -> ScoreMap:
    """(scores float32 K x H x W, class_ids int64 K, background float32 H x W or None)."""
    path = Path(path)
    try:
        with np.load(path) as data:
            background = data["background"].astype(np.float32) if "background" in data else None
            return ScoreMap(data["scores"].astype(np.float32), data["class_ids"].astype(np.int64), background)
    except FileNotFoundError:
        raise DataError(f"{path}: score map not found") from None
    except Exception as exc:
        raise DataError(f"{path}: cannot read score map ({exc})") from None


def load_image_scores(directory: str | os.PathLike, image_id: str, shape: tuple[int, int]) -> ScoreMap:
    """The score map of one image, checked against the image's size and for NaN / inf."""
    path = Path(directory) / f"{image_id}.npz"
    loaded = load_score_map(path)
    if loaded.scores.shape[1:] != tuple(shape):
        raise DataError(f"{path}: score map size {loaded.scores.shape[1:]} differs from image {image_id} {tuple(shape)}")
    if not all(np.isfinite(a).all() for a in (loaded.scores, loaded.background) if a is not None):
        raise DataError(f"{path}: score map of image {image_id} holds NaN or inf")
    return loaded


def save_boundary_map(path: str | os.PathLike, boundary: np.ndarray) -> None:
    """Store IRN's boundary map (h x w, values in [0, 1]) in fp32, so that a walk on the stored
    map equals the walk on the freshly computed one."""
    boundary = np.asarray(boundary, dtype=np.float32)
    if boundary.ndim != 2 or not np.isfinite(boundary).all():
        raise ValueError(f"{path}: a boundary map must be a finite h x w array, got shape {boundary.shape}")
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, boundary=boundary)


def load_boundary_map(directory: str | os.PathLike, image_id: str) -> np.ndarray:
    """The stored boundary map (float32 h x w) of one image; DataError naming the file otherwise."""
    path = Path(directory) / f"{image_id}.npz"
    try:
        with np.load(path) as data:
            boundary = data["boundary"]
    except FileNotFoundError:
        raise DataError(f"{path}: boundary map of image {image_id} not found (run the irn_boundaries stage)") from None
    except Exception as exc:
        raise DataError(f"{path}: cannot read the boundary map of image {image_id} ({exc})") from None
    if boundary.ndim != 2 or not np.isfinite(boundary).all():
        raise DataError(f"{path}: boundary map of image {image_id} is not a finite h x w array")
    return boundary.astype(np.float32)
