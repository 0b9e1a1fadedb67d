import pytest
import torch
import torch.nn.functional as F

from wsss.core.params import BackboneParams
from wsss.methods.sipe import (
    TABLE3_STEPS,
    SIPEClassifier,
    SIPEConfig,
    SIPELoss,
    allowed_classes,
    cam_with_background,
    default_projection_channels,
    gsc_loss,
    is_cam,
    multiscale_is_cam,
    normalize_maps,
    parse_steps,
    prototypes,
    rescale_background,
    sipe_losses,
    structure_analysis,
    unchunked_structure_analysis,
)
from wsss.models.backbones import build_backbone


def _model(config=None, classes=3, stride=8, seed=0):
    torch.manual_seed(seed)
    backbone = build_backbone(BackboneParams(name="tiny", pretrained=False, checkpoint=None, output_stride=stride))
    return SIPEClassifier(backbone, classes, config)


def _two_regions(height=6, width=8):
    """Left half feature e0, right half e1 (orthogonal); class-1 CAM on the left half."""
    features = torch.zeros(1, 4, height, width)
    features[0, 0, :, : width // 2] = 1.0
    features[0, 1, :, width // 2:] = 2.0
    raw = torch.zeros(1, 2, height, width)
    raw[0, 0, :, : width // 2] = 3.0
    raw[0, 0, :, width // 2:] = 0.3
    raw[0, 1] = 5.0  # class 2 not labelled: ignored
    labels = torch.tensor([[1.0, 0.0]])
    return features, cam_with_background(raw, labels), allowed_classes(labels)


@pytest.mark.parametrize("seed_iou", ["product", "minmax"])
def test_structure_analysis_seeds_follow_the_region_the_cam_covers(seed_iou):
    features, cam, allowed = _two_regions()
    assert torch.all(cam[0, 2] == 0) and torch.allclose(cam[0, 0] + cam[0, 1], torch.ones(6, 8), atol=1e-4)
    seeds, iou = structure_analysis(features, cam, allowed, seed_iou=seed_iou, chunk_size=5)
    expected = torch.zeros(1, 6, 8, dtype=torch.long)
    expected[0, :, :4] = 1
    assert torch.equal(seeds, expected)
    assert torch.isinf(iou[:, 2]).all()  # non-labelled class never wins


def test_cam_background_over_all_classes_counts_the_unlabelled_ones_before_the_mask():
    raw = torch.zeros(1, 2, 2, 2)
    raw[0, 0, 0, 0] = 4.0  # labelled class: peak at (0, 0)
    raw[0, 1, 1, 1] = 2.0  # unlabelled class: fires at (1, 1) only
    labels = torch.tensor([[1.0, 0.0]])
    labelled = cam_with_background(raw, labels, "labelled")
    everything = cam_with_background(raw, labels, "all")
    assert torch.equal(labelled[:, 1:], everything[:, 1:])  # class maps are masked either way
    assert torch.all(everything[0, 2] == 0)
    assert labelled[0, 0, 1, 1] == pytest.approx(1.0)
    assert everything[0, 0, 1, 1] == pytest.approx(0.0, abs=1e-4)  # 1 − its own max-normalised 1
    assert everything[0, 0, 0, 0] == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(ValueError, match="cam_background"):
        cam_with_background(raw, labels, "some")


def test_chunked_structure_analysis_equals_unchunked():
    torch.manual_seed(0)
    features = torch.randn(2, 5, 7, 9)
    raw = torch.randn(2, 4, 7, 9)
    labels = torch.tensor([[1.0, 0, 1, 0], [0, 1, 1, 1]])
    cam, allowed = cam_with_background(raw, labels), allowed_classes(labels)
    ref_seeds, ref_iou = unchunked_structure_analysis(features, cam, allowed, bg_iou_factor=0.5)
    for chunk in (1, 10, 63, None):
        seeds, iou = structure_analysis(features, cam, allowed, bg_iou_factor=0.5, chunk_size=chunk)
        assert torch.equal(seeds, ref_seeds)
        assert torch.allclose(iou, ref_iou, atol=1e-6)
    # the background factor is applied to the background IoU only
    _, iou_one = structure_analysis(features, cam, allowed, bg_iou_factor=1.0, chunk_size=10)
    assert torch.allclose(iou_one[:, 0] * 0.5, ref_iou[:, 0], atol=1e-6)
    assert torch.allclose(iou_one[:, 1:], ref_iou[:, 1:], atol=1e-6)


def test_prototypes_are_means_of_their_seeds_and_is_cam_is_one_on_them():
    torch.manual_seed(0)
    features = torch.randn(2, 6, 4, 5)
    seeds = torch.randint(0, 3, (2, 4, 5))
    seeds[1][seeds[1] == 2] = 0  # class 2 absent in image 1
    protos, present = prototypes(features, seeds, 4)
    for b in range(2):
        for k in range(4):
            mask = seeds[b] == k
            assert bool(present[b, k]) == bool(mask.any())
            if mask.any():
                assert torch.allclose(protos[b, k], features[b][:, mask].mean(dim=1), atol=1e-5)
            else:
                assert torch.all(protos[b, k] == 0)
    maps = is_cam(features, protos, present)
    assert maps.shape == (2, 4, 4, 5) and maps.min() >= 0
    assert torch.all(maps[1, 2] == 0) and torch.all(maps[:, 3] == 0)
    features[0, :, 1, 2] = protos[0, 1] * 3.0  # a pixel whose feature is (a multiple of) the prototype
    assert torch.isclose(is_cam(features, protos, present)[0, 1, 1, 2], torch.tensor(1.0), atol=1e-6)


def test_gsc_loss_zero_when_cam_equals_normalised_is_cam():
    torch.manual_seed(0)
    raw = torch.rand(2, 3, 5, 5)
    for mode in ("max", "minmax"):
        target = normalize_maps(raw, mode)
        assert gsc_loss(target.clone(), target) == 0
        assert gsc_loss(target + 0.25, target) == pytest.approx(0.25)


def test_max_versus_minmax_normalisation():
    maps = torch.linspace(0.2, 0.6, 12).view(1, 1, 3, 4)
    by_max, by_minmax = normalize_maps(maps, "max"), normalize_maps(maps, "minmax")
    assert by_max.max() == pytest.approx(1.0, abs=1e-4) and by_max.min() == pytest.approx(1 / 3, abs=1e-4)
    assert by_minmax.max() == pytest.approx(1.0, abs=1e-4) and by_minmax.min() == pytest.approx(0.0, abs=1e-6)
    assert torch.all(normalize_maps(torch.zeros(1, 2, 3, 3), "minmax") == 0)
    with pytest.raises(ValueError):
        normalize_maps(maps, "sum")


def test_background_rescale_multiplies_only_the_background():
    maps = torch.rand(3, 4, 4)
    scaled = rescale_background(maps, 0.8)
    assert torch.allclose(scaled[0], maps[0] * 0.8) and torch.equal(scaled[1:], maps[1:])


@pytest.mark.parametrize("steps", list(dict.fromkeys(
    ["pr_is", "pr_is,pr_is", "pr_is,pamr,pr_is", "pamr,pr_is,pr_is", "pamr,pr_is", *TABLE3_STEPS.values()])))
def test_every_step_order_runs(steps):
    model = _model(SIPEConfig(steps=steps, pamr_iters=2), classes=3).eval()
    images, labels = torch.randn(2, 3, 48, 48), torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    with torch.no_grad():
        out = model(images, labels)
    assert out["cam"].shape == out["is_cam"].shape == (2, 4, 6, 6)
    assert out["seeds"].shape == out["final_seeds"].shape == (2, 6, 6)
    assert out["prototypes"].shape == (2, 4, model.feature_dim)
    allowed = allowed_classes(labels)
    assert torch.all(allowed.gather(1, out["final_seeds"].flatten(1)))  # seeds only bg + labelled
    assert torch.all(out["is_cam"][~allowed] == 0)
    if steps == "pr_is":
        assert torch.equal(out["seeds"], out["final_seeds"])


@pytest.mark.parametrize("steps", ["", "pr_is,", "pr_is,foo", "pr_is,pamr", "PAMR,pr_is"])
def test_invalid_step_string_raises(steps):
    with pytest.raises(ValueError, match="steps"):
        SIPEConfig(steps=steps)


def test_config_presets_and_validation():
    ae = SIPEConfig.ae_sipe()
    assert ae.step_tokens == ("pr_is", "pamr", "pr_is") and ae.hierarchical_structure
    assert ae.is_cam_norm == "minmax" and ae.bg_scale == 0.8
    assert SIPEConfig().step_tokens == ("pr_is",) and SIPEConfig().bg_iou_factor == 0.5
    assert parse_steps(" pr_is , pamr ,pr_is") == ("pr_is", "pamr", "pr_is")
    assert SIPEConfig.from_dict({"steps": "pr_is,pr_is"}).steps == "pr_is,pr_is"
    assert SIPEConfig().pamr_sigma == "all_dilations"  # the reference PAMR's σ
    for bad in ({"is_cam_norm": "l2"}, {"seed_chunk": 0}, {"pamr_dilations": (0,)}, {"pamr_sigma": "d1"}, {"foo": 1}):
        with pytest.raises(ValueError):
            SIPEConfig.from_dict(bad)
    assert default_projection_channels([256, 512, 1024, 2048]) == (128, 128, 256, 256)
    assert default_projection_channels([64, 96, 128, 256]) == (32, 48, 64, 128)


def test_gradients_flow_through_both_losses():
    model = _model(SIPEConfig.ae_sipe(pamr_iters=1), classes=3).train()
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    losses = sipe_losses(model, images, labels)
    assert set(losses) == {"loss", "cls", "gsc"} and torch.isclose(losses["loss"], losses["cls"] + losses["gsc"])
    backbone, new = model.parameter_groups()
    assert {id(p) for p in backbone}.isdisjoint(id(p) for p in new)
    assert len(backbone) + len(new) == len(list(model.parameters()))
    for name in ("cls", "gsc"):
        grads = torch.autograd.grad(losses[name], backbone + new, retain_graph=True, allow_unused=True)
        backbone_norm = sum(float(g.abs().sum()) for g in grads[: len(backbone)] if g is not None)
        assert backbone_norm > 0, name
    side = list(model.side.parameters())
    grads = torch.autograd.grad(losses["gsc"], side, retain_graph=True, allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in grads)  # IS-CAM trains the projections


def test_gsc_warmup_trains_the_classification_loss_alone_first():
    torch.manual_seed(0)
    model = _model(SIPEConfig(), classes=3).train()
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    loss = SIPELoss(warmup_epochs=2)
    for epoch, with_gsc in ((0, False), (1, False), (2, True)):
        loss.set_epoch(epoch)
        torch.manual_seed(1)
        losses = loss(model, images, labels)
        assert losses["gsc"] > 0  # still reported during the warm-up
        expected = losses["cls"] + losses["gsc"] if with_gsc else losses["cls"]
        assert torch.equal(losses["loss"], expected), epoch


def test_multiscale_is_cam_shape_range_and_background_scale():
    model = _model(SIPEConfig(), classes=3).eval()
    image = torch.randn(3, 40, 36)
    maps = multiscale_is_cam(model, image, torch.tensor([1, 3]), scales=(1.0, 0.5), hflip=True)
    assert maps.shape == (3, 40, 36) and maps.min() >= 0 and maps.max() <= 1
    only_bg = multiscale_is_cam(model, image, torch.tensor([], dtype=torch.long), scales=(1.0,), hflip=False)
    assert only_bg.shape == (1, 40, 36) and only_bg.min() >= 0 and only_bg.max() <= 1

    ae = SIPEClassifier(model.backbone, 3, SIPEConfig.ae_sipe(pamr_iters=2))
    ae.load_state_dict(model.state_dict())
    ae.eval()
    plain = SIPEClassifier(model.backbone, 3, SIPEConfig.ae_sipe(pamr_iters=2, bg_scale=1.0))
    plain.load_state_dict(model.state_dict())
    plain.eval()
    scaled = multiscale_is_cam(ae, image, torch.tensor([2]), scales=(1.0,), hflip=False)
    unscaled = multiscale_is_cam(plain, image, torch.tensor([2]), scales=(1.0,), hflip=False)
    assert torch.allclose(scaled[0], 0.8 * unscaled[0], atol=1e-6) and torch.equal(scaled[1:], unscaled[1:])
    assert unscaled.amin(dim=(1, 2)).max() == pytest.approx(0.0, abs=1e-6)  # min-max normalised


def test_inference_fuses_the_flip_at_feature_level_so_maps_mirror_exactly():
    # The references sum the image's and its mirror's class maps and hierarchical features before
    # the structure analysis: the IS-CAM of a mirrored image is then the mirrored IS-CAM.
    model = _model(SIPEConfig(), classes=3).eval()
    image = torch.randn(1, 3, 40, 48)
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    maps = model.infer(image, labels, hflip=True)
    mirrored = model.infer(image.flip(-1), labels, hflip=True)
    assert maps.shape == (1, 4, 5, 6)
    assert torch.allclose(mirrored, maps.flip(-1), atol=1e-5)
    assert not torch.allclose(model.infer(image, labels, hflip=False), maps, atol=1e-3)


def test_multiscale_is_cam_reference_mode_runs_infer():
    per_flip = _model(SIPEConfig(inference="per_flip"), classes=3).eval()
    reference = SIPEClassifier(per_flip.backbone, 3, SIPEConfig(inference="reference")).eval()
    reference.load_state_dict(per_flip.state_dict())
    image, ids = torch.randn(3, 40, 48), torch.tensor([2])
    maps = multiscale_is_cam(reference, image, ids, scales=(1.0,), hflip=True)
    raw = reference.infer(image[None], torch.tensor([[0.0, 1.0, 0.0]]), hflip=True)[:, [0, 2]]
    expected = normalize_maps(F.interpolate(raw, size=(40, 48), mode="bilinear", align_corners=False)[0])
    assert torch.allclose(maps, expected, atol=1e-6)
    assert not torch.allclose(multiscale_is_cam(per_flip, image, ids, scales=(1.0,), hflip=True), maps, atol=1e-3)
    with pytest.raises(ValueError, match="inference"):
        SIPEConfig(inference="fused")


def test_inference_argmax_over_every_class_leaves_an_unlabelled_class_without_prototype():
    """`infer_argmax: all` (the references' inference) changes nothing when every class is
    labelled; otherwise a position may seed an unlabelled class, whose IS-CAM stays 0."""
    labelled = _model(SIPEConfig(), classes=3).eval()
    every = SIPEClassifier(labelled.backbone, 3, SIPEConfig(infer_argmax="all")).eval()
    every.load_state_dict(labelled.state_dict())
    image = torch.randn(1, 3, 40, 48)
    full, partial = torch.ones(1, 3), torch.tensor([[1.0, 0.0, 1.0]])
    assert torch.equal(every.infer(image, full), labelled.infer(image, full))
    assert torch.all(every.infer(image, partial)[:, 2] == 0)


def test_per_scale_normalisation_weighs_every_scale_alike():
    """`scale_norm: per_scale` (AE-SIPE's reference) normalises each scale's IS-CAM before the
    sum, so a scale of weak maps counts as much as one of strong maps; `after_fusion` sums raw."""
    def infer(scaled, labels, hflip):  # scale 1: left half 1; scale 0.5: right half 10
        maps = torch.zeros(1, 4, 4, 4)
        if scaled.shape[-1] == 48:
            maps[..., :2] = 1.0
        else:
            maps[..., 2:] = 10.0
        return maps

    fused = {}
    for scale_norm in ("after_fusion", "per_scale"):
        model = _model(SIPEConfig(scale_norm=scale_norm), classes=3).eval()
        model.infer = infer
        fused[scale_norm] = multiscale_is_cam(model, torch.randn(3, 40, 48), torch.tensor([1]), (1.0, 0.5), True)
    assert torch.allclose(fused["per_scale"], fused["per_scale"].flip(-1), atol=1e-6)
    assert fused["after_fusion"][1, :, :8].max() < 0.2 < fused["after_fusion"][1, :, -8:].min()


@pytest.mark.parametrize("hierarchical_structure", [False, True])
def test_inference_structure_analysis_uses_hierarchical_features(monkeypatch, hierarchical_structure):
    import wsss.methods.sipe as sipe

    model = _model(SIPEConfig(hierarchical_structure=hierarchical_structure), classes=3).eval()
    seen = []
    real = sipe.structure_analysis
    monkeypatch.setattr(sipe, "structure_analysis", lambda f, *a, **k: seen.append(f.shape[1]) or real(f, *a, **k))
    image, labels = torch.randn(1, 3, 40, 48), torch.tensor([[0.0, 1.0, 0.0]])
    model.infer(image, labels)
    model(image, labels)  # training forward: level 4 (256 channels) unless hierarchical_structure
    assert seen == [model.feature_dim, model.feature_dim if hierarchical_structure else 256]


def test_params_sections_reach_the_pamr_inside_the_model():
    from wsss.core import params
    from wsss.methods.seed_methods import sipe_config

    raw = {"seeds": {"method": "ae_sipe", "ae_sipe": {"pamr_sigma": "dilation1", "pamr_dilations": [1, 3]}}}
    model = _model(sipe_config(params.validate(raw).seeds.sipe_section), classes=3)
    assert (model.pamr.sigma, model.pamr.dilations) == ("dilation1", (1, 3))
    assert sipe_config(params.validate({"seeds": {"method": "sipe"}}).seeds.sipe_section).pamr_sigma == "all_dilations"


@pytest.mark.parametrize("pamr_scale, pamr_sigma", [(0.25, "all_dilations"), (None, "dilation1")])
def test_pamr_step_reseeds_by_argmax_of_the_refined_is_cam(pamr_scale, pamr_sigma):
    from wsss.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from wsss.methods.pamr import PAMR

    base = _model(SIPEConfig(steps="pr_is"), classes=3).eval()
    ae = SIPEClassifier(base.backbone, 3, SIPEConfig(steps="pr_is,pamr,pr_is", pamr_iters=3, pamr_scale=pamr_scale,
                                                     pamr_sigma=pamr_sigma))
    ae.load_state_dict(base.state_dict())
    ae.eval()
    images, labels = torch.randn(2, 3, 48, 40), torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    with torch.no_grad():
        first, out = base(images, labels), ae(images, labels)
        grid = first["is_cam_raw"].shape[-2:]
        raw = images * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        size = grid if pamr_scale is None else (12, 10)
        guide = F.interpolate(raw, size=size, mode="bilinear", align_corners=True)
        refined = PAMR(3, sigma=pamr_sigma)(guide, first["is_cam_raw"])
        refined = F.interpolate(refined, size=grid, mode="bilinear", align_corners=True)
        refined[~allowed_classes(labels)] = float("-inf")
    assert torch.equal(out["seeds"], first["seeds"])
    assert torch.equal(out["final_seeds"], refined.argmax(dim=1))
    protos, present = prototypes(ae.hierarchical_features(ae.backbone(images)), out["final_seeds"], 4)
    assert torch.allclose(out["prototypes"], protos, atol=1e-6) and torch.equal(out["prototype_mask"], present)


def test_repeated_pr_is_reseeds_from_the_previous_is_cam():
    """Table 3's "+ (Pr, IS)": the second round's seeds are the argmax of the first IS-CAM, not
    the structure-analysis seeds again."""
    base = _model(SIPEConfig(steps="pr_is"), classes=3).eval()
    twice = SIPEClassifier(base.backbone, 3, SIPEConfig(steps="pr_is,pr_is"))
    twice.load_state_dict(base.state_dict())
    twice.eval()
    images, labels = torch.randn(2, 3, 48, 40), torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    with torch.no_grad():
        first, out = base(images, labels), twice(images, labels)
        expected = first["is_cam_raw"].masked_fill(~allowed_classes(labels)[..., None, None], float("-inf")).argmax(1)
        hierarchical = twice.hierarchical_features(twice.backbone(images))
    assert torch.equal(out["seeds"], first["seeds"])
    assert torch.equal(out["final_seeds"], expected)
    protos, present = prototypes(hierarchical, expected, 4)
    assert torch.allclose(out["is_cam_raw"], is_cam(hierarchical, protos, present), atol=1e-6)
