"""IRN: pair labels, losses on hand-built cases, frozen backbone, the pseudo mask from a walk."""

import numpy as np
import pytest
import torch

from wsss.methods.irn import IRN, irn_losses, pair_labels
from wsss.methods.pseudo_masks import irn_mask
from wsss.methods.random_walk import forward_offsets
from wsss.models.backbones import TinyBackbone

RADIUS = 3


def _two_regions(height=8, width=10):
    labels = torch.zeros(1, height, width, dtype=torch.long)
    labels[0, :, 5:] = 2
    labels[0, 0, 0] = 255
    return labels


def test_pair_labels_classify_every_pair():
    labels = _two_regions()
    pairs = pair_labels(labels, RADIUS)
    offsets = forward_offsets(RADIUS)
    right = offsets.index((0, 1))
    # (row 3, col 4) is background, its right neighbour is class 2: a negative pair.
    assert pairs["neg"][0, right, 3, 4] == 1 and pairs["bg_pos"][0, right, 3, 4] == 0
    assert pairs["bg_pos"][0, right, 3, 2] == 1
    assert pairs["fg_pos"][0, right, 3, 6] == 1
    # The ignored pixel and pairs leaving the map belong to no group.
    total = pairs["neg"] + pairs["bg_pos"] + pairs["fg_pos"]
    assert total[0, :, 0, 0].sum() == 0
    assert total[0, right, :, -1].sum() == 0
    assert total.max() == 1


def test_reference_window_keeps_only_the_pairs_from_irns_sources():
    """`pair_sources: reference_window`: sources in rows < h − r and columns r … w − r − 1
    (r = radius − 1), IRN's PathIndex window, every pair from them inside the map."""
    labels = torch.zeros(1, 8, 10, dtype=torch.long)
    window = pair_labels(labels, RADIUS, "reference_window")["bg_pos"][0]
    r = RADIUS - 1
    expected = torch.zeros(8, 10, dtype=torch.bool)
    expected[:8 - r, r:10 - r] = True
    assert torch.equal(window.amax(dim=0) > 0, expected)
    assert bool(window[:, expected].all())
    assert torch.equal(window, pair_labels(labels, RADIUS)["bg_pos"][0] * expected)
    with pytest.raises(ValueError, match="pair_sources"):
        pair_labels(labels, RADIUS, "border")


def test_a_boundary_on_the_class_border_scores_better_than_elsewhere():
    labels = torch.zeros(1, 8, 20, dtype=torch.long)
    labels[0, :, 10:] = 2

    def loss_with_boundary_at(columns):
        logits = torch.full((1, 1, 8, 20), -8.0)
        if columns:
            logits[..., columns] = 2.2  # B = 0.9
        return irn_losses(logits, torch.zeros(1, 2, 8, 20), labels, RADIUS)["affinity"]

    on_border = loss_with_boundary_at([9, 10])
    misplaced = loss_with_boundary_at([3, 4])
    flat = irn_losses(torch.zeros(1, 1, 8, 20), torch.zeros(1, 2, 8, 20), labels, RADIUS)["affinity"]
    assert on_border < misplaced and on_border < flat
    assert loss_with_boundary_at([]) > on_border  # no boundary: crossing pairs look alike


def test_displacement_to_the_centre_costs_nothing():
    labels = torch.ones(1, 9, 9, dtype=torch.long)  # one object covering the map
    ys, xs = torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij")
    to_centre = torch.stack([4.0 - ys, 4.0 - xs])[None]
    losses = irn_losses(torch.zeros(1, 1, 9, 9), to_centre, labels, RADIUS)
    assert losses["fg_displacement"] < 1e-5
    wrong = irn_losses(torch.zeros(1, 1, 9, 9), torch.zeros(1, 2, 9, 9), labels, RADIUS)
    assert wrong["fg_displacement"] > 0.5


def test_only_the_heads_learn():
    model = IRN(TinyBackbone(8))
    model.train()
    images = torch.randn(2, 3, 32, 32)
    edge, displacement = model(images)
    assert edge.shape == (2, 1, 8, 8) and displacement.shape == (2, 2, 8, 8)
    labels = torch.randint(0, 3, (2, 8, 8))
    irn_losses(edge, displacement, labels, RADIUS)["loss"].backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for head in model.heads() for p in head.parameters())
    assert not model.backbone.training  # BN statistics stay frozen in train mode


def test_irn_mask_follows_the_boundary():
    boundary = torch.zeros(8, 10)
    boundary[:, 5] = 1.0
    scores = np.zeros((1, 32, 40), np.float32)
    scores[0, 10:20, 4:12] = 1.0  # a seed on the left half only
    mask = irn_mask(boundary, scores, np.array([3]), radius=5, beta=10.0, exp_times=6, bg_score=0.25)
    assert mask.shape == (32, 40) and set(np.unique(mask)) <= {0, 3}
    assert (mask[:, :16] == 3).mean() > 0.5  # spread over its side of the wall
    assert (mask[:, 24:] == 3).sum() == 0  # and not across it


def test_irn_mask_without_classes_or_signal_is_background():
    boundary = torch.zeros(4, 5)
    assert (irn_mask(boundary, np.zeros((0, 16, 20), np.float32), np.array([], np.int64), 5, 10.0, 2, 0.25) == 0).all()
    assert (irn_mask(boundary, np.zeros((1, 16, 20), np.float32), np.array([2]), 5, 10.0, 2, 0.25) == 0).all()


def test_losses_refuse_labels_of_another_size():
    with pytest.raises(ValueError, match="must match the boundary map"):
        irn_losses(torch.zeros(1, 1, 8, 8), torch.zeros(1, 2, 8, 8), torch.zeros(1, 6, 8, dtype=torch.long))


def test_boundary_is_the_edge_branch_of_forward_averaged_with_the_flip():
    torch.manual_seed(0)
    model = IRN(TinyBackbone(8)).eval()
    image = torch.randn(3, 32, 40)
    with torch.no_grad():
        logits, _ = model(torch.stack([image, image.flip(-1)]))
    expected = torch.sigmoid(logits[0, 0] / 2 + logits[1, 0].flip(-1) / 2)
    assert torch.allclose(model.boundary(image), expected, atol=1e-6)


def _trained_boundary_head(displacement: bool) -> IRN:
    torch.manual_seed(0)
    model = IRN(TinyBackbone(8), displacement=displacement)
    model.train()
    optimizer = torch.optim.SGD([p for head in model.heads() for p in head.parameters()], lr=0.1,
                                momentum=0.9, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        images = torch.randn(2, 3, 32, 32, generator=generator)
        labels = torch.randint(0, 3, (2, 8, 8), generator=generator)
        edge, field = model(images)
        optimizer.zero_grad()
        irn_losses(edge, field, labels, RADIUS)["loss"].backward()
        optimizer.step()
    return model


def test_boundary_head_trains_bit_for_bit_the_same_without_the_displacement_head():
    with_field, without = _trained_boundary_head(True), _trained_boundary_head(False)
    boundary_keys = [k for k in with_field.state_dict() if not k.startswith("displacement_")]
    assert sorted(boundary_keys) == sorted(without.state_dict())
    for key in boundary_keys:
        assert torch.equal(with_field.state_dict()[key], without.state_dict()[key]), key
    # irn_boundaries reads either checkpoint into a boundary-only IRN
    reader = IRN(TinyBackbone(8), displacement=False)
    reader.load_state_dict(with_field.state_dict())
    image = torch.randn(3, 32, 40)
    assert torch.equal(reader.eval().boundary(image), without.eval().boundary(image))
    assert set(irn_losses(torch.zeros(1, 1, 8, 8), None, torch.zeros(1, 8, 8, dtype=torch.long), RADIUS)) \
        == {"loss", "affinity"}
