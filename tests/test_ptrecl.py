"""PtReCl core (docs/methods.md §8): reservoir sampling, spherical K-means, reclassification, labels."""

import math

import pytest
import torch
import torch.nn.functional as F

from wsss.methods.pseudo_masks import threshold_mask
from wsss.methods.ptrecl import (
    ClassPrototypes,
    PrototypeBank,
    Reservoir,
    build_prototypes,
    reclassify,
    spherical_kmeans,
)


def unit(*values):
    return F.normalize(torch.tensor(values, dtype=torch.float32), dim=-1)


def clusters(directions, per_cluster, noise, seed):
    """Noisy points around each direction, with random positive magnitudes (cosine ignores them)."""
    g = torch.Generator().manual_seed(seed)
    points = directions.repeat_interleave(per_cluster, dim=0)
    points = points + noise * torch.randn(points.shape, generator=g)
    return points * (0.5 + 3 * torch.rand(len(points), 1, generator=g))


def image(features_per_pixel, mask_rows):
    """D x H x W features from an H x W x D nested list, and an H x W int64 mask."""
    features = torch.tensor(features_per_pixel, dtype=torch.float32).permute(2, 0, 1).contiguous()
    return features, torch.tensor(mask_rows, dtype=torch.int64)


# --- spherical K-means -------------------------------------------------------------------------------------

def test_spherical_kmeans_recovers_well_separated_directions():
    truth, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(0)))
    truth = truth[:3]  # 3 orthonormal directions in R^8
    centroids = spherical_kmeans(clusters(truth, 40, 0.05, seed=1), k=3, generator=0)
    assert centroids.shape == (3, 8)
    assert torch.allclose(centroids.norm(dim=1), torch.ones(3), atol=1e-5)
    match = truth @ centroids.T  # 3 x 3 cosines
    assert sorted(match.argmax(dim=1).tolist()) == [0, 1, 2]  # a permutation
    assert match.max(dim=1).values.min() > 0.995


def test_spherical_kmeans_is_deterministic_and_scale_invariant():
    points = clusters(torch.eye(6)[:4], 25, 0.3, seed=2)
    a = spherical_kmeans(points, k=4, generator=torch.Generator().manual_seed(5))
    b = spherical_kmeans(points, k=4, generator=5)
    c = spherical_kmeans(points * 7.5, k=4, generator=5)
    assert torch.equal(a, b)
    assert torch.allclose(a, c, atol=1e-5)


def test_spherical_kmeans_with_few_distinct_directions_returns_them_all():
    e = torch.eye(4)
    points = torch.stack([e[0], 2 * e[0], e[1], e[1], 0.5 * e[2], torch.zeros(4)])  # 3 directions, 1 zero row
    centroids = spherical_kmeans(points, k=5)
    assert centroids.shape == (3, 4)
    assert torch.allclose((centroids @ e[:3].T).max(dim=0).values, torch.ones(3))
    assert spherical_kmeans(torch.zeros(0, 4), k=5).shape == (0, 4)
    assert spherical_kmeans(torch.zeros(3, 4), k=2).shape == (0, 4)


def test_spherical_kmeans_reseeds_an_empty_cluster():
    e = torch.eye(3)
    points = clusters(e[:2], 20, 0.05, seed=3)
    # Both initial centroids on e0: the second never wins a point and must be re-seeded, ending on e1.
    centroids = spherical_kmeans(points, k=2, init=torch.stack([e[0], e[0]]))
    assert sorted((e[:2] @ centroids.T).argmax(dim=1).tolist()) == [0, 1]
    assert (e[:2] @ centroids.T).max(dim=1).values.min() > 0.99


# --- reservoir and bank ------------------------------------------------------------------------------------

def test_reservoir_keeps_capacity_and_every_item_equally_often():
    g = torch.Generator().manual_seed(0)
    trials, kept = 1500, torch.zeros(10)
    for _ in range(trials):
        r = Reservoir(capacity=3)
        for start in range(0, 10, 2):  # items 0..9 offered in 5 batches
            items = torch.arange(start, start + 2, dtype=torch.float32)[:, None]
            r.offer(items, torch.rand(2, generator=g))
            assert len(r) <= 3
        kept[r.points.flatten().long()] += 1
        assert r.seen == 10
    frequency = kept / trials  # each item is kept with probability 3/10
    assert (frequency - 0.3).abs().max() < 0.06  # ~5 standard deviations


def striped_image(index, height=4, width=5, dim=3):
    """Top two rows class 1, the rest background; channel 0 = image index, channel 1 = 1 on class 1."""
    mask = torch.zeros(height, width, dtype=torch.int64)
    mask[:2] = 1
    features = torch.zeros(dim, height, width)
    features[0] = index
    features[1] = (mask == 1).float()
    features[2] = 1.0
    return features, mask


def test_bank_reservoir_is_uniform_over_images_and_memory_is_bounded():
    bank = PrototypeBank(pixels_per_image=5, capacity=60, generator=0)
    for i in range(60):  # 300 foreground points offered, 60 kept
        bank.add(*striped_image(i), class_ids=[1])
    fg = bank.foreground(1)
    assert fg.shape == (60, 3)
    assert (fg[:, 1] == 1).all()  # only class-1 pixels
    sources = fg[:, 0].long()
    assert torch.bincount(sources, minlength=60).max() <= 5  # the per-image budget
    first_half = int((sources < 30).sum())  # hypergeometric, mean 30, sd ~3.5
    assert abs(first_half - 30) <= 12  # neither the early (fill-first) nor the late images dominate
    full = bank.nbytes()
    assert full == 2 * 60 * (3 * 4 + 8)  # fg + bg, 60 points of 3 float32s + 1 float64 key each
    for i in range(60, 200):
        bank.add(*striped_image(i), class_ids=[1])
    assert bank.nbytes() == full
    assert len(bank.foreground(1)) == len(bank.background(1)) == 60
    assert (bank.foreground(1)[:, 0] >= 60).float().mean() > 0.5  # later images are sampled too


def test_bank_respects_per_image_budget_ignore_and_other_classes():
    # 4 x 5 image: class 2 (12 px), class 3 (3 px), background 0 (2 px), ignore (3 px).
    mask = torch.tensor([[2, 2, 2, 2, 2],
                         [2, 2, 2, 2, 2],
                         [2, 2, 3, 3, 3],
                         [0, 0, 255, 255, 255]])
    features = torch.stack([mask.float(), torch.ones(4, 5)])  # channel 0 tells which pixel it is
    bank = PrototypeBank(pixels_per_image=4, capacity=1000, generator=1)
    for _ in range(30):
        bank.add(features, mask, class_ids=torch.tensor([2, 3]))
    fg2, bg2, fg3, bg3 = bank.foreground(2), bank.background(2), bank.foreground(3), bank.background(3)
    assert fg2.shape == bg2.shape == bg3.shape == (120, 2)  # 4 per image and set, 30 images
    assert fg3.shape == (90, 2)  # class 3 has only 3 pixels per image
    assert (fg2[:, 0] == 2).all() and (fg3[:, 0] == 3).all()
    assert set(bg2[:, 0].tolist()) == {0.0, 3.0}  # class 3's pixels are class 2's background
    assert set(bg3[:, 0].tolist()) == {0.0, 2.0}
    small = PrototypeBank(pixels_per_image=4, generator=1)
    small.add(features, mask, class_ids=[3])
    assert small.foreground(3).shape == (3, 2)  # fewer pixels than the budget: all of them, once
    assert small.background(3).shape == (4, 2)  # 14 candidate pixels, budget 4
    assert set(small.background(3)[:, 0].tolist()) <= {0.0, 2.0}


def test_bank_is_deterministic_given_a_seed():
    def filled(seed):
        bank = PrototypeBank(pixels_per_image=3, capacity=10, generator=seed)
        for i in range(20):
            bank.add(*striped_image(i), class_ids=[1])
        return bank.foreground(1)

    assert torch.equal(filled(4), filled(4))
    assert not torch.equal(filled(4), filled(5))


def test_a_class_without_pixels_yields_no_prototypes_without_crashing():
    bank = PrototypeBank(pixels_per_image=8, generator=0)
    features, mask = striped_image(0)
    bank.add(features, mask, class_ids=[1, 4])  # class 4 is labelled but has no pixel in the mask
    assert bank.foreground(4).shape == (0, 3)
    assert bank.background(4).shape == (8, 3)
    assert bank.foreground(9).shape == (0, 3)  # never seen at all
    protos = build_prototypes(bank, k=20, generator=0, classes=[1, 4, 9])
    assert set(protos) == {1, 4, 9}
    assert protos[4].foreground.shape == (0, 3) and not protos[4].empty
    assert protos[9].empty and protos[9].foreground.shape == protos[9].background.shape == (0, 3)
    # Striped features have 2 distinct directions per set: fewer than K = 20, so 1 + 1 prototypes for class 1.
    assert protos[1].foreground.shape == (1, 3) and protos[1].background.shape == (1, 3)
    scores = reclassify(features, [1, 4, 9], protos, m=10, formula="fg_share")
    assert scores.shape == (3, 4, 5)
    assert torch.equal(scores[1:], torch.zeros(2, 4, 5))  # no foreground prototype: score 0
    # fg prototype (0, 1, 1)/√2, bg prototype (0, 0, 1): cosines 1 and 1/√2 (fg pixel) or 1/√2 and 1 (bg pixel).
    r = 1 / math.sqrt(2)
    assert torch.allclose(scores[0], torch.where(mask == 1, 1 / (1 + r), r / (1 + r)), atol=1e-6)
    assert build_prototypes(PrototypeBank(), classes=[3])[3].empty  # an empty bank


# --- reclassification --------------------------------------------------------------------------------------

def separated_prototypes():
    """fg prototypes around e0, bg prototypes around e2: far apart (orthogonal)."""
    fg = torch.stack([unit(1, 0, 0, 0), unit(1, 0.2, 0, 0)])
    bg = torch.stack([unit(0, 0, 1, 0), unit(0, 0, 1, 0.2)])
    return {5: ClassPrototypes(fg, bg)}


@pytest.mark.parametrize("formula", ["fg_share", "fg_margin", "vote"])
def test_pixel_equal_to_a_prototype_scores_one_or_zero(formula):
    protos = separated_prototypes()
    features = torch.stack([protos[5].foreground[0], 3 * protos[5].background[1]], dim=1).view(4, 1, 2)
    scores = reclassify(features, [5], protos, m=2, formula=formula)
    assert scores.shape == (1, 1, 2)
    assert torch.allclose(scores.flatten(), torch.tensor([1.0, 0.0]))


def one_fg_three_bg():
    """Class 1's prototypes and a pixel (e0) with similarities fg 0.9; bg 0.3, 0.3, -1."""
    e = torch.eye(5)
    fg = torch.stack([0.9 * e[0] + math.sqrt(1 - 0.81) * e[1]])
    bg = torch.stack([0.3 * e[0] + math.sqrt(0.91) * e[2], 0.3 * e[0] + math.sqrt(0.91) * e[3], -e[0]])
    return e, fg, bg, {1: ClassPrototypes(fg, bg)}, e[0].view(5, 1, 1)


def test_fg_share_and_vote_differ_as_expected():
    e, fg, bg, protos, pixel = one_fg_three_bg()
    share = reclassify(pixel, [1], protos, m=3, formula="fg_share").item()
    vote = reclassify(pixel, [1], protos, m=3, formula="vote").item()
    assert share == pytest.approx(0.9 / 1.5, abs=1e-5)  # one strong fg outweighs two weak bg
    assert vote == pytest.approx(1 / 3, abs=1e-6)  # one fg among three
    # Top 4 includes the −1 bg prototype: ReLU drops it from fg_share, vote counts it.
    assert reclassify(pixel, [1], protos, m=4, formula="fg_share").item() == pytest.approx(0.6, abs=1e-5)
    assert reclassify(pixel, [1], protos, m=4, formula="vote").item() == pytest.approx(0.25, abs=1e-6)
    # m beyond the 4 prototypes is clamped to 4.
    assert torch.equal(reclassify(pixel, [1], protos, m=100, formula="vote"),
                       reclassify(pixel, [1], protos, m=4, formula="vote"))
    # All similarities <= 0: fg_share is 0 (not NaN); vote still counts.
    opposite = -e[0].view(5, 1, 1)  # fg −0.9; bg −0.3, −0.3, +1 -> top 1 is bg
    assert reclassify(opposite, [1], {1: ClassPrototypes(fg, bg[:2])}, m=3, formula="fg_share").item() == 0.0
    assert reclassify(opposite, [1], {1: ClassPrototypes(fg, bg[:2])}, m=3, formula="vote").item() == \
        pytest.approx(1 / 3, abs=1e-6)


def test_fg_margin_is_the_clipped_excess_of_foreground_mass():
    e, _, _, protos, pixel = one_fg_three_bg()
    # Top 3: fg mass 0.9 against bg mass 0.6 -> (0.9 - 0.6) / 1.5.
    assert reclassify(pixel, [1], protos, m=3, formula="fg_margin").item() == pytest.approx(0.2, abs=1e-5)
    # Top 1 is the fg prototype alone: the full margin.
    assert reclassify(pixel, [1], protos, m=1, formula="fg_margin").item() == pytest.approx(1.0, abs=1e-6)
    # Background mass wins (a pixel near the bg prototypes): 0, where fg_share is still above 0.
    near_bg = F.normalize(e[2] + e[3] + 0.2 * e[0], dim=0).view(5, 1, 1)
    assert reclassify(near_bg, [1], protos, m=3, formula="fg_margin").item() == 0.0
    assert reclassify(near_bg, [1], protos, m=3, formula="fg_share").item() > 0.0
    # A monotone map of fg_share wherever that is above one half.
    g = torch.Generator().manual_seed(1)
    random = {1: ClassPrototypes(F.normalize(torch.randn(6, 5, generator=g), dim=1),
                                 F.normalize(torch.randn(6, 5, generator=g), dim=1))}
    features = torch.randn(5, 7, 9, generator=g)
    share = reclassify(features, [1], random, m=4, formula="fg_share")
    margin = reclassify(features, [1], random, m=4, formula="fg_margin")
    assert torch.allclose(margin, (2 * share - 1).clamp_min(0), atol=1e-6)


def test_reclassify_orders_classes_and_stays_in_unit_range():
    g = torch.Generator().manual_seed(0)
    protos = {c: ClassPrototypes(F.normalize(torch.randn(4, 6, generator=g), dim=1),
                                 F.normalize(torch.randn(3, 6, generator=g), dim=1)) for c in (2, 7)}
    features = torch.randn(6, 5, 4, generator=g)
    for formula in ("fg_share", "fg_margin", "vote"):
        both = reclassify(features, [7, 2], protos, m=5, formula=formula)
        assert both.shape == (2, 5, 4) and both.min() >= 0 and both.max() <= 1
        assert torch.allclose(both[0], reclassify(features, [7], protos, m=5, formula=formula)[0])
        assert torch.allclose(both[1], reclassify(features, [2], protos, m=5, formula=formula)[0])
    assert reclassify(features, [], protos, m=10, formula="fg_share").shape == (0, 5, 4)


def test_pipeline_reclassifies_a_new_image():
    """Bank -> prototypes -> scores -> labels on synthetic images: fg near e0/e1, bg near e2/e3."""
    e, g = torch.eye(4), torch.Generator().manual_seed(0)

    def make():
        mask = (torch.rand(6, 6, generator=g) < 0.4).long()  # class 1 or background
        fg_dir = torch.where(torch.rand(6, 6, generator=g) < 0.5, 0, 1)
        bg_dir = torch.where(torch.rand(6, 6, generator=g) < 0.5, 2, 3)
        feats = e[torch.where(mask == 1, fg_dir, bg_dir)].permute(2, 0, 1)
        return feats + 0.05 * torch.randn(feats.shape, generator=g), mask

    bank = PrototypeBank(pixels_per_image=10, capacity=200, generator=0)
    for _ in range(40):
        bank.add(*make(), class_ids=[1])
    protos = build_prototypes(bank, k=4, generator=0)
    assert protos[1].foreground.shape == protos[1].background.shape == (4, 4)
    features, mask = make()
    scores = reclassify(features, [1], protos, m=4, formula="fg_share")
    assert scores[0][mask == 1].min() > 0.8 and scores[0][mask == 0].max() < 0.2
    assert (threshold_mask(scores.numpy(), [1], 0.5) == mask.numpy()).all()


# --- arguments and devices ---------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: spherical_kmeans(torch.randn(5, 3), k=0), "k must"),
    (lambda: spherical_kmeans(torch.randn(5, 3), k=2, iters=0), "iters must"),
    (lambda: spherical_kmeans(torch.randn(5), k=2), "points must"),
    (lambda: spherical_kmeans(torch.randn(5, 3), k=2, init=torch.randn(3, 3)), "init must"),
    (lambda: reclassify(torch.randn(3, 2, 2), [1], {}, m=0, formula="fg_share"), "m must"),
    (lambda: reclassify(torch.randn(3, 2, 2), [1], {}, m=10, formula="mean"), "formula must"),
    (lambda: reclassify(torch.randn(3, 2, 2), [1], {1: ClassPrototypes(torch.randn(2, 4), torch.randn(1, 4))}, m=10,
                       formula="fg_share"),
     r"class 1 prototypes have shape \(2, 4\), features have D = 3"),
    (lambda: reclassify(torch.randn(3, 2, 2), [1, 1], {}, m=10, formula="fg_share"), "class_ids must be distinct"),
    (lambda: PrototypeBank(pixels_per_image=0), "pixels_per_image must"),
    (lambda: PrototypeBank(capacity=-1), "capacity must"),
    (lambda: PrototypeBank(generator="seed"), "generator must"),
    (lambda: PrototypeBank().add(torch.randn(3, 4, 5), torch.zeros(5, 4, dtype=torch.long), [1]),
     r"features \(3, 4, 5\) and mask \(5, 4\) do not match"),
    (lambda: PrototypeBank().add(torch.randn(3, 4, 5), torch.zeros(4, 5), [1]), "mask must hold integer"),
    (lambda: PrototypeBank().add(torch.randn(3, 4, 5), torch.zeros(4, 5, dtype=torch.long), [255]),
     "class_ids must be integers"),
])
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bank_rejects_a_change_of_feature_dimension():
    bank = PrototypeBank()
    bank.add(*striped_image(0), class_ids=[1])
    with pytest.raises(ValueError, match="D = 4, the bank holds D = 3"):
        bank.add(torch.randn(4, 4, 5), torch.zeros(4, 5, dtype=torch.long), [1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    def run(device):
        bank = PrototypeBank(pixels_per_image=6, capacity=50, generator=0)
        for i in range(30):
            features, mask = striped_image(i)
            features = features + 0.1 * torch.randn(features.shape, generator=torch.Generator().manual_seed(i))
            bank.add(features.to(device), mask.to(device), class_ids=[1])
        protos = build_prototypes(bank, k=3, generator=0)
        features = striped_image(3)[0].to(device)
        scores = reclassify(features, [1], protos, m=4, formula="fg_share")
        return bank.foreground(1), protos[1].foreground, scores

    cpu, cuda = run("cpu"), run("cuda")
    assert all(t.device.type == "cuda" for t in cuda)
    assert torch.equal(cpu[0], cuda[0].cpu())  # same samples: keys drawn from the same CPU generator
    for a, b in zip(cpu[1:], cuda[1:]):
        assert torch.allclose(a.float(), b.cpu().float(), atol=1e-4)


def test_prototypes_round_trip_through_a_weights_only_file(tmp_path):
    from wsss.core.io import save_state_dict
    from wsss.methods.ptrecl import prototypes_from_state, prototypes_to_state

    g = torch.Generator().manual_seed(3)
    protos = {2: ClassPrototypes(F.normalize(torch.randn(3, 6, generator=g), dim=1), torch.zeros(0, 6)),
              9: ClassPrototypes(F.normalize(torch.randn(1, 6, generator=g), dim=1),
                                 F.normalize(torch.randn(4, 6, generator=g), dim=1))}
    save_state_dict(tmp_path / "p.pt", prototypes_to_state(protos))
    loaded = prototypes_from_state(torch.load(tmp_path / "p.pt", weights_only=True))
    assert sorted(loaded) == [2, 9]
    for c in protos:
        assert torch.equal(loaded[c].foreground, protos[c].foreground)
        assert torch.equal(loaded[c].background, protos[c].background)
    with pytest.raises(ValueError, match="unexpected prototype entry"):
        prototypes_from_state({"bottle.foreground": torch.zeros(1, 6)})
    with pytest.raises(ValueError, match="class 4"):
        prototypes_from_state({"4.foreground": torch.zeros(1, 6)})
