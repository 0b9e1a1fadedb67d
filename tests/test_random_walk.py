"""The sparse random walk against IRN's dense formulation, written out here pixel pair by pixel pair."""

import itertools

import numpy as np
import pytest
import torch

from wsss.methods.random_walk import (
    forward_offsets,
    path_pixels,
    random_walk,
    transition_matrix,
)


def dense_irn_walk(maps: np.ndarray, boundary: np.ndarray, radius: int, beta: float, exp_times: int) -> np.ndarray:
    """IRN's propagate_to_edge in float64: dense (hw)² affinity, column-normalised, squared exp_times times."""
    channels, height, width = maps.shape
    n = height * width
    affinity = np.eye(n)
    for y, x in itertools.product(range(height), range(width)):
        for dy in range(-radius + 1, radius):
            for dx in range(-radius + 1, radius):
                if (dy, dx) == (0, 0) or dy * dy + dx * dx >= radius * radius:
                    continue
                ty, tx = y + dy, x + dx
                if not (0 <= ty < height and 0 <= tx < width):
                    continue
                # The path i -> j: pixels of the bounding box within distance 1 of the line.
                on_path = [boundary[y + py, x + px]
                           for py in range(min(0, dy), max(0, dy) + 1)
                           for px in range(min(0, dx), max(0, dx) + 1)
                           if (dy * px - dx * py) ** 2 / (dy * dy + dx * dx) < 1]
                affinity[y * width + x, ty * width + tx] = 1.0 - max(on_path)
    transition = affinity**beta
    transition = transition / transition.sum(axis=0, keepdims=True)
    for _ in range(exp_times):
        transition = transition @ transition
    x = (maps * (1.0 - boundary)).reshape(channels, n)
    return (x @ transition).reshape(channels, height, width)


@pytest.mark.parametrize("height,width,radius,beta,exp_times", [
    (9, 11, 5, 10.0, 8),   # IRN's defaults on a small map
    (14, 17, 4, 3.0, 5),
    (6, 25, 5, 10.0, 4),   # a strip narrower than the neighbourhood
    (3, 4, 2, 1.0, 2),
])
def test_sparse_walk_equals_dense_formulation(height, width, radius, beta, exp_times):
    generator = np.random.default_rng(height * width)
    boundary = generator.uniform(0, 1, (height, width)) ** 3  # mostly low, a few strong edges
    maps = generator.uniform(0, 1, (3, height, width))
    expected = dense_irn_walk(maps, boundary, radius, beta, exp_times)
    got = random_walk(torch.from_numpy(maps).float(), torch.from_numpy(boundary).float(), radius, beta, exp_times)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)


def test_offsets_and_paths_follow_irn():
    offsets = forward_offsets(5)
    assert len(offsets) == 34 and (0, 1) in offsets and (4, 2) in offsets and (4, 3) not in offsets
    assert all(dy > 0 or (dy == 0 and dx > 0) for dy, dx in offsets)
    assert path_pixels(0, 3) == ((0, 0), (0, 1), (0, 2), (0, 3))
    # Within distance 1 of the diagonal: the diagonal and its 4-neighbours inside the box.
    assert set(path_pixels(2, 2)) == {(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 1), (2, 2)}


def test_memory_grows_with_pixels_times_neighbourhood():
    boundary = torch.zeros(40, 50)
    transition = transition_matrix(boundary, radius=5)
    per_pixel = 2 * len(forward_offsets(5)) + 1
    assert transition.layout == torch.sparse_csr
    assert transition.values().numel() <= 40 * 50 * per_pixel
    rows = torch.sparse.sum(transition.to_sparse_coo(), dim=1).to_dense()
    torch.testing.assert_close(rows, torch.ones(40 * 50))


def test_a_boundary_wall_stops_the_walk():
    boundary = torch.zeros(20, 30)
    boundary[:, 15] = 1.0
    maps = torch.zeros(1, 20, 30)
    maps[0, 8:12, 3:6] = 1.0
    walked = random_walk(maps, boundary, radius=5, beta=10.0, exp_times=6)
    assert walked[0, :, :15].sum() > 0
    assert walked[0, :, 16:].abs().max() < 1e-6  # nothing crosses the wall
    assert walked[0, :, :15].std() < maps[0, :, :15].std()  # and it spreads on its own side


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="same H x W"):
        random_walk(torch.zeros(2, 5, 6), torch.zeros(5, 7))
    with pytest.raises(ValueError, match="NaN"):
        random_walk(torch.full((1, 5, 6), float("nan")), torch.zeros(5, 6))
    with pytest.raises(ValueError, match="radius"):
        random_walk(torch.zeros(1, 5, 6), torch.zeros(5, 6), radius=1)
