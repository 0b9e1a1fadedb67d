"""PtReCl: prototype-based pseudo-mask reclassification (docs/methods.md §8), the pure-algorithm core.

1. Collect (`PrototypeBank`): one pass over the training set with a network's features
   (D x H x W per image) and pseudo masks (H x W class ids, 255 = ignore). For every labelled
   class c of an image, the features of the pixels the mask assigns to c go to c's foreground
   set, those of its other non-ignored pixels to c's background set. Memory stays bounded:
   at most `pixels_per_image` pixels, drawn uniformly without replacement, per image, class and
   set; at most `capacity` points per set, kept by a priority-key reservoir (every offered point
   gets an i.i.d. U(0, 1) key, the set keeps the `capacity` largest keys), so a set is a uniform
   sample without replacement of all points offered to it, whatever the order of the images.
2. Cluster (`build_prototypes`): spherical K-means (`spherical_kmeans`) turns each set into at
   most K prototypes (unit vectors). A set with fewer than K distinct directions gives one
   prototype per distinct direction; an empty set gives a 0 x D tensor, never an error. It runs
   in exact (fixed-point) arithmetic: the prototypes are the same bits whatever the BLAS, the CPU
   or the thread count, so the stage's output reproduces on another machine.
3. Reclassify (`reclassify`): for every pixel and labelled class c, the cosine similarities to
   c's fg + bg prototypes (in the same exact arithmetic), sorted descending; the top m decide
   the score in [0, 1]:
       "fg_share":  Σ_fg ReLU(s) / Σ ReLU(s) over the top m (0 when the sum is 0);
       "fg_margin": max(0, (Σ_fg ReLU(s) − Σ_bg ReLU(s)) / Σ ReLU(s)) = max(0, 2·fg_share − 1): how far
                    the foreground mass exceeds the background's, 0 where the background's wins.
                    A monotone map of fg_share (the map alone thresholds the same), but 0 off the
                    object like a CAM, which is what IRN's walk expects of its input (step 5);
       "vote":      fraction of the top m that are foreground prototypes.
   m is clamped to the number of prototypes the class has (so m > 2K is allowed and means "all").
   A class without prototypes scores 0. (`wsss.methods.pseudo_masks.threshold_mask` makes labels.)

Randomness comes from a `torch.Generator` or an int seed (a CPU generator seeded with it); the
numbers are drawn on the generator's device and moved, so a seed gives the same samples on CPU and
CUDA. Everything else runs on the device of its input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence, get_args

import torch
import torch.nn.functional as F

from wsss.core.params import PtreclFormula
from wsss.data.base import IGNORE_INDEX as IGNORE

FORMULAS = get_args(PtreclFormula)
GeneratorLike = torch.Generator | int | None


def _as_generator(generator: GeneratorLike) -> torch.Generator | None:
    """An int is a seed for a fresh CPU generator; None means torch's global RNG."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(generator)
    raise ValueError(f"generator must be a torch.Generator, an int seed or None, got {generator!r}")


def _uniform(n: int, generator: torch.Generator | None, device: torch.device,
             dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """n draws of U(0, 1) on `device`, taken on the generator's device (same numbers on any device)."""
    source = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(n, generator=generator, device=source, dtype=dtype).to(device)


def _positive_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _class_list(class_ids: Sequence[int] | torch.Tensor) -> list[int]:
    """Distinct class ids in [0, 255) as Python ints, in the given order."""
    ids = class_ids.flatten().tolist() if isinstance(class_ids, torch.Tensor) else list(class_ids)
    if any(not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < IGNORE for c in ids):
        raise ValueError(f"class_ids must be integers in [0, {IGNORE}), got {ids}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"class_ids must be distinct, got {ids}")
    return ids


# Priority keys in float64: 53 random bits make ties practically impossible (float32's 24 bits give
# several among 20,000 keys), so which rows top-k keeps never rests on its unspecified tie order.
_KEY_DTYPE = torch.float64


class Reservoir:
    """A uniform sample without replacement of at most `capacity` of the rows ever offered.

    Priority keys: each offered row carries an i.i.d. U(0, 1) key and the reservoir keeps the
    rows with the `capacity` largest keys, one vectorised top-k per offer. Holds at most
    `capacity` rows (plus one offered batch while merging).
    """

    def __init__(self, capacity: int):
        self.capacity = _positive_int(capacity, "capacity")
        self.points: torch.Tensor | None = None
        self.keys: torch.Tensor | None = None
        self.seen = 0  # rows offered so far

    def __len__(self) -> int:
        return 0 if self.points is None else self.points.shape[0]

    def offer(self, points: torch.Tensor, keys: torch.Tensor) -> None:
        """Offer N x D rows with their N keys."""
        self.seen += points.shape[0]
        if self.points is not None:
            points, keys = torch.cat([self.points, points]), torch.cat([self.keys, keys])
        if points.shape[0] > self.capacity:
            keys, keep = keys.topk(self.capacity)
            points = points[keep]
        self.points, self.keys = points, keys


class PrototypeBank:
    """Bounded per-class foreground/background feature samples, filled one image at a time."""

    def __init__(self, pixels_per_image: int = 64, capacity: int = 20_000, generator: GeneratorLike = None,
                 device: torch.device | str | None = None):
        self.pixels_per_image = _positive_int(pixels_per_image, "pixels_per_image")
        self.capacity = _positive_int(capacity, "capacity")
        self.generator = _as_generator(generator)
        self.device = None if device is None else torch.device(device)  # None: the first features' device
        self.dim: int | None = None
        self._sets: dict[int, tuple[Reservoir, Reservoir]] = {}  # class -> (foreground, background)

    @property
    def classes(self) -> list[int]:
        return sorted(self._sets)

    def foreground(self, class_id: int) -> torch.Tensor:
        """n x D features sampled from class_id's pixels (0 x D if none)."""
        return self._points(class_id, 0)

    def background(self, class_id: int) -> torch.Tensor:
        """n x D features sampled from the other pixels of images labelled class_id (0 x D if none)."""
        return self._points(class_id, 1)

    def nbytes(self) -> int:
        """Bytes held by all stored points and keys."""
        return sum(r.points.nbytes + r.keys.nbytes for pair in self._sets.values() for r in pair if len(r))

    def add(self, features: torch.Tensor, mask: torch.Tensor, class_ids: Sequence[int] | torch.Tensor) -> None:
        """Sample one image: features D x H x W, mask H x W (255 = ignore), its labelled class ids."""
        if features.ndim != 3 or mask.ndim != 2 or tuple(features.shape[1:]) != tuple(mask.shape):
            raise ValueError(f"features {tuple(features.shape)} and mask {tuple(mask.shape)} do not match: "
                             "expected D x H x W and H x W")
        if mask.is_floating_point():
            raise ValueError(f"mask must hold integer class ids, got {mask.dtype}")
        if self.dim is not None and features.shape[0] != self.dim:
            raise ValueError(f"features have D = {features.shape[0]}, the bank holds D = {self.dim}")
        self.dim = features.shape[0]
        self.device = self.device or features.device
        flat = features.detach().reshape(self.dim, -1).to(self.device, torch.float32)
        mask = mask.reshape(-1).to(self.device)
        valid = mask != IGNORE
        for c in _class_list(class_ids):
            sets = self._sets.setdefault(c, (Reservoir(self.capacity), Reservoir(self.capacity)))
            inside = mask == c
            for reservoir, member in zip(sets, (inside, valid & ~inside)):
                index = self._sample(member)
                keys = _uniform(len(index), self.generator, self.device, _KEY_DTYPE)
                reservoir.offer(flat[:, index].T, keys)

    def _sample(self, member: torch.Tensor) -> torch.Tensor:
        """Indices of at most pixels_per_image members, uniformly without replacement."""
        keys = _uniform(member.numel(), self.generator, member.device, _KEY_DTYPE).masked_fill_(~member, -1.0)
        count = min(int(member.sum()), self.pixels_per_image)
        return keys.topk(count).indices

    def _points(self, class_id: int, which: int) -> torch.Tensor:
        points = self._sets[class_id][which].points if class_id in self._sets else None
        return points if points is not None else torch.zeros(0, self.dim or 0, device=self.device)


# K-means runs in exact arithmetic. Unit vectors are rounded to multiples of 1 / _FIXED and kept
# as integers (in float64): every dot product of two of them, every cluster sum and all their
# partial sums are integers below 2^53, which float64 holds exactly, so a matmul gives the same
# bits whatever its summation order. In float32 the result of `x @ c.T` depends on the BLAS's
# code path for the CPU (MKL's on Intel vs AMD, or with MKL_CBWR) and on its thread count, and
# one flipped last bit changes an assignment and then every later iteration (issue 17).
_FIXED = 2.0**24


def _square_norms(x: torch.Tensor) -> torch.Tensor:
    """Row sums of squares in float64, added in a fixed order (cumsum is a sequential scan on CPU;
    torch's sum and vector_norm add in an order that depends on the CPU's vector width)."""
    x = x.to(torch.float64)
    return x.square().cumsum(dim=1)[:, -1] if x.shape[1] else x.new_zeros(x.shape[0])


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length, in float64 (a zero row stays zero)."""
    return x.to(torch.float64) / _square_norms(x).sqrt().clamp_min(1e-150)[:, None]


def _fixed(unit: torch.Tensor) -> torch.Tensor:
    """Unit rows as integers (float64): components times _FIXED, rounded."""
    return torch.round(unit * _FIXED)


def spherical_kmeans(points: torch.Tensor, k: int, iters: int = 30, generator: GeneratorLike = None,
                     init: torch.Tensor | None = None) -> torch.Tensor:
    """K-means under cosine distance; returns k' x D unit centroids, k' = min(k, distinct directions).

    Points are L2-normalised (zero rows, having no direction, are dropped); a point goes to the
    centroid of largest dot product (the first on a tie); a centroid is the normalised mean of
    its points. Init is k-means++ with distance 1 − cos (or `init`, k x D); a cluster left empty
    is re-seeded with the point farthest from its centroid. With at most k distinct directions
    (at the 2^-24 resolution of the arithmetic) those directions are returned as they are
    (sorted), and with none a 0 x D tensor. The result depends only on the input and the
    generator, not on the BLAS, the CPU or the thread count (exact arithmetic, see _FIXED).
    """
    k, iters = _positive_int(k, "k"), _positive_int(iters, "iters")
    if points.ndim != 2:
        raise ValueError(f"points must be N x D, got shape {tuple(points.shape)}")
    dtype = torch.float64 if points.dtype == torch.float64 else torch.float32
    x = points.detach().to(torch.float64)
    x = _fixed(_unit_rows(x[_square_norms(x) > 1e-24]))
    distinct = torch.unique(x, dim=0) if len(x) else x
    if len(x) == 0 or (init is None and distinct.shape[0] <= k):
        return _unit_rows(distinct).to(dtype)
    if init is not None:
        if init.shape != (k, x.shape[1]):
            raise ValueError(f"init must be k x D = {(k, x.shape[1])}, got {tuple(init.shape)}")
        centroids = _unit_rows(init.detach().to(x))
    else:
        centroids = _unit_rows(_kmeanspp(x, k, _as_generator(generator)))
    assign = None
    for _ in range(iters):
        sims = x @ _fixed(centroids).T  # exact
        best, new_assign = sims.max(dim=1)
        onehot = F.one_hot(new_assign, k).to(x.dtype)
        sums, counts = onehot.T @ x, onehot.sum(dim=0)  # exact (at most 2^29 points)
        centroids = torch.where((_square_norms(sums) > 0)[:, None], _unit_rows(sums), centroids)
        empty = (counts == 0).nonzero().flatten()[: len(x)]  # (with `init`, x may have fewer than k points)
        if len(empty):
            centroids[empty] = _unit_rows(x[best.argsort(stable=True)[: len(empty)]])  # farthest points
        elif assign is not None and torch.equal(assign, new_assign):
            break
        assign = new_assign
    return centroids.to(dtype)


def _kmeanspp(x: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
    """k-means++ seeding on fixed-point unit rows: each next centre drawn with probability
    ∝ (1 − max cos to the chosen)²."""
    draws = _uniform(k, generator, x.device)
    chosen = [min(int(draws[0] * x.shape[0]), x.shape[0] - 1)]
    distance = (1 - x @ x[chosen[0]] / _FIXED**2).clamp_min(0)
    for i in range(1, k):
        weights = distance.square().cumsum(dim=0)
        index = int(torch.searchsorted(weights, draws[i] * weights[-1]).clamp(max=x.shape[0] - 1))
        chosen.append(index)
        distance = torch.minimum(distance, (1 - x @ x[index] / _FIXED**2).clamp_min(0))
    return x[chosen].clone()


@dataclass(frozen=True)
class ClassPrototypes:
    """One class's unit prototypes: foreground k_fg x D, background k_bg x D (either may be 0 x D)."""

    foreground: torch.Tensor
    background: torch.Tensor

    @property
    def empty(self) -> bool:
        """True when the class has no prototype at all (e.g. it never occurred in the data)."""
        return self.foreground.shape[0] + self.background.shape[0] == 0


def build_prototypes(bank: PrototypeBank, k: int = 20, iters: int = 30, generator: GeneratorLike = None,
                     classes: Sequence[int] | None = None) -> dict[int, ClassPrototypes]:
    """Per class, up to k fg and k bg prototypes by spherical K-means of the bank's samples.

    `classes` defaults to every class the bank saw; a requested class it never saw gets empty
    (0 x D) prototypes. Classes are clustered in sorted order from one generator: deterministic.
    """
    k, iters = _positive_int(k, "k"), _positive_int(iters, "iters")
    generator = _as_generator(generator)
    result = {}
    for c in sorted(_class_list(bank.classes if classes is None else classes)):
        fg, bg = (spherical_kmeans(p, k, iters, generator) for p in (bank.foreground(c), bank.background(c)))
        result[c] = ClassPrototypes(fg, bg)
    return result


def reclassify(features: torch.Tensor, class_ids: Sequence[int] | torch.Tensor,
               prototypes: Mapping[int, ClassPrototypes], m: int, formula: PtreclFormula) -> torch.Tensor:
    """L x H x W scores in [0, 1] of the L labelled classes (in class_ids order) for D x H x W features.

    Per pixel and class: cosine similarity to the class's fg + bg prototypes, the top
    min(m, number of prototypes) decide (module docstring). A class missing from `prototypes`,
    or with no prototype, scores 0. All classes and pixels are one batched product.
    """
    m = _positive_int(m, "m")
    if formula not in FORMULAS:
        raise ValueError(f"formula must be one of {FORMULAS}, got {formula!r}")
    if features.ndim != 3:
        raise ValueError(f"features must be D x H x W, got shape {tuple(features.shape)}")
    ids = _class_list(class_ids)
    dim, height, width = features.shape
    device = features.device
    dtype = torch.float64 if features.dtype == torch.float64 else torch.float32
    empty = torch.zeros(0, dim, device=device, dtype=dtype)
    banks, flags = [], []
    for c in ids:
        p = prototypes.get(c, ClassPrototypes(empty, empty))
        for part in (p.foreground, p.background):
            if part.ndim != 2 or (part.shape[0] and part.shape[1] != dim):
                raise ValueError(f"class {c} prototypes have shape {tuple(part.shape)}, features have D = {dim}")
        fg, bg = (part.to(device, dtype) if part.shape[0] else empty for part in (p.foreground, p.background))
        banks.append(torch.cat([fg, bg]))
        flags.append(torch.arange(banks[-1].shape[0], device=device) < p.foreground.shape[0])
    n_max = max((b.shape[0] for b in banks), default=0)
    if n_max == 0:
        return torch.zeros(len(ids), height, width, device=device, dtype=dtype)
    protos = torch.zeros(len(ids), n_max, dim, device=device, dtype=torch.float64)
    is_fg = torch.zeros(len(ids), n_max, dtype=torch.bool, device=device)
    valid = torch.zeros_like(is_fg)
    for i, (b, f) in enumerate(zip(banks, flags)):
        protos[i, : len(b)], is_fg[i, : len(b)], valid[i, : len(b)] = _unit_rows(b), f, True
    # Exact arithmetic as in K-means (_FIXED): the similarities, and so the maps, are the same
    # bits whatever the BLAS, the CPU or the thread count.
    pixels = _fixed(_unit_rows(features.detach().reshape(dim, -1).T))  # H·W x D
    sims = (_fixed(protos) @ pixels.T).masked_fill_(~valid[:, :, None], float("-inf"))  # L x n_max x H·W, cos · 2^48
    # A stable sort, not topk: on a tie (equal fixed-point similarity) the lower index, so a fg and
    # a bg prototype at the same similarity are counted the same way everywhere.
    top, index = (t[:, : min(m, n_max)] for t in sims.sort(dim=1, descending=True, stable=True))
    top_fg = is_fg.gather(1, index.flatten(1)).view_as(index)
    if formula == "vote":
        counted = valid.sum(dim=1).clamp(max=m, min=1)[:, None]  # padding is never in the top m it counts
        scores = top_fg.sum(dim=1).to(torch.float64) / counted
    else:
        positive = top.clamp_min(0).long()  # ReLU; padding's −inf becomes 0; integers: exact sums
        total, fg = positive.sum(dim=1), (positive * top_fg).sum(dim=1)
        scores = torch.where(total > 0, fg.double() / total.clamp_min(1).double(), 0.0)
        if formula == "fg_margin":
            scores = torch.where(total > 0, 2 * scores - 1, 0.0).clamp_min_(0)
    scores = scores.to(dtype)
    return scores.clamp_(0, 1).view(len(ids), height, width)


def prototypes_to_state(prototypes: Mapping[int, ClassPrototypes]) -> dict[str, torch.Tensor]:
    """A flat {"<class>.foreground" / "<class>.background": k x D} dict of CPU tensors: a state
    dict that torch.save stores and wsss.core.io.load_checkpoint reads back."""
    state = {}
    for c, p in sorted(prototypes.items()):
        state[f"{c}.foreground"] = p.foreground.detach().cpu().contiguous()
        state[f"{c}.background"] = p.background.detach().cpu().contiguous()
    return state


def prototypes_from_state(state: Mapping[str, torch.Tensor]) -> dict[int, ClassPrototypes]:
    """The inverse of prototypes_to_state; ValueError on a key or shape it did not write."""
    result = {}
    for key in state:
        c, _, kind = key.partition(".")
        if not c.isdigit() or kind not in ("foreground", "background"):
            raise ValueError(f"unexpected prototype entry {key!r}")
    for c in sorted({int(key.partition(".")[0]) for key in state}):
        fg, bg = state.get(f"{c}.foreground"), state.get(f"{c}.background")
        if fg is None or bg is None or fg.ndim != 2 or bg.ndim != 2:
            raise ValueError(f"class {c}: expected k x D foreground and background prototypes")
        result[c] = ClassPrototypes(fg, bg)
    return result
