"""Write tests/golden/*.npz: small inputs and what the authors' reference code computes from them.

The reference repositories are not part of this project. Check each one out somewhere outside it
(docs/fidelity.md names the repositories and commits) and pass their folders:

    python scripts/make_golden.py --irn DIR --sipe DIR --ae-sipe DIR --eps DIR --pamr DIR
    python scripts/make_golden.py --irn DIR --only irn_cam irn_walk     # some cases only

Each case runs in a fresh (spawned) process that puts one snapshot on sys.path and changes into
it: the repositories reuse top-level package names (`network`, `tool`, `data`). Everything the
reference code needs from a GPU or from a package this project lacks is patched at run time, in
that process only (`.cuda()` becomes a copy on the CPU, `imageio` and other unused imports become
stubs); the snapshots are never modified. Network weights are not stored: both this script and
tests/test_golden.py rebuild them from seeds (tests/helpers/golden.py). Files are written to a
temporary name and then renamed. tests/test_golden.py compares wsss's functions with these files.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.helpers.golden import (  # after the sys.path insert above
    GOLDEN_DIR,
    blob_maps,
    calibrated_resnet_state,
    centred_side_weights,
    resnet50_state,
    seeded_normal,
    sipe_head_weights,
    synthetic_image,
)

CAM_SCALES = (1.0, 0.5, 1.5, 2.0)  # IRN's make_cam defaults
SIPE_SCALES = (1.0, 0.5)  # enough to exercise the fusion; kept small so the test stays fast
IRN_CLASSES = np.array([2, 7, 14])  # 0-based VOC foreground indices, as IRN's `keys`
SIPE_NUM_CLS = 4  # background + 3 classes
IRN_RADIUS_TRAIN = 10  # step/train_irn.py
LOSS_GRID = 32  # stride-4 grid of a 128 px training crop
FRAME = IRN_RADIUS_TRAIN - 1  # IRN's radius_floor: the border its loss leaves out


# --------------------------------------------------------------------------- reference process


def stub_if_missing(name: str) -> None:
    """An importable stand-in for a module the reference imports but these cases never use."""
    try:
        importlib.import_module(name)
    except ImportError:
        sys.modules[name] = mock.MagicMock(name=name)


def enter_reference(ref_dir: str, stubs: tuple[str, ...]) -> None:
    """Make `ref_dir` importable as its scripts expect, without a GPU or its unused packages."""
    os.chdir(ref_dir)  # IRN's voc12.dataloader opens voc12/cls_labels.npy at import
    sys.path.insert(0, ref_dir)
    torch.set_num_threads(1)
    for name in stubs:
        stub_if_missing(name)
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self
    torch.Tensor.cuda = lambda self, *args, **kwargs: self.clone()  # a GPU copy is a new tensor
    torch.cuda.device = lambda *args, **kwargs: contextlib.nullcontext()
    # Two "GPUs" for process 0 skips the progress prints that divide by len(data) // 20.
    torch.cuda.device_count = lambda: 2


def run_case(name: str, ref_dir: str) -> dict[str, np.ndarray]:
    """Run one case in this (fresh) process; returns its arrays."""
    from wsss.core.torchvision_compat import import_torchvision

    import_torchvision()  # the SIPE data modules import torchvision.transforms
    function, _, stubs = CASES[name]
    enter_reference(ref_dir, stubs)
    return function()


@contextlib.contextmanager
def reference_resnet(module, dilated: bool):
    """The reference's resnet50() without downloading ImageNet weights; `dilated` passes the
    reference's own `dilations` argument so that layer 4 is dilated as torchvision's (and wsss's)."""
    original = module.resnet50

    def build(pretrained=True, **kwargs):
        if dilated:
            kwargs["dilations"] = (1, 1, 1, 2)
        return original(pretrained=False, **kwargs)

    module.resnet50 = build
    try:
        yield
    finally:
        module.resnet50 = original


def bilinear_rescale(image: np.ndarray, scale: float, order: int) -> np.ndarray:
    """wsss's image resize (bilinear on floats, align_corners=False) in place of the
    references' PIL bicubic one, to isolate everything else in multi-scale inference."""
    height, width = image.shape[:2]
    size = (int(np.round(height * scale)), int(np.round(width * scale)))
    tensor = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    resized = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)
    return resized[0].permute(1, 2, 0).numpy()


def msf_dataset(cls, image: np.ndarray, name, label: np.ndarray, scales, normalize):
    """One-image instance of a reference multi-scale dataset class, without its files."""
    dataset = object.__new__(cls)
    dataset.img_name_list = [name]
    dataset.label_list = [label.astype(np.float32)]
    dataset.voc12_root = ""
    dataset.scales = scales
    dataset.img_normal = normalize
    return dataset


def label_vector(classes, count: int) -> np.ndarray:
    vector = np.zeros(count, np.float32)
    vector[list(classes)] = 1.0
    return vector


# --------------------------------------------------------------------------- IRN


def irn_image() -> np.ndarray:
    return synthetic_image(48, 64, seed=1)


def contrast_rows(features: torch.Tensor, pairs) -> np.ndarray:
    """Classifier rows f(a) − f(b) (unit norm) for pairs of positions (a, b) of a 2048 x h x w
    feature map. Seeded random rows give nearly flat CAMs on a random backbone; these rows make
    each class map high near a and zero near b, so the comparison sees real spatial structure."""
    rows = torch.stack([features[:, ya, xa] - features[:, yb, xb] for (ya, xa), (yb, xb) in pairs])
    return F.normalize(rows, dim=1).numpy().astype(np.float32)


IRN_PAIRS = (((0, 0), (2, 3)), ((2, 0), (0, 3)), ((1, 3), (1, 0)))  # on the 3 x 4 layer-4 grid


def irn_cam_model(net, dilated: bool):
    """IRN's CAM network with the seeded backbone (classifier rows set by the caller)."""
    with reference_resnet(net.resnet50, dilated):
        model = net.resnet50_cam.CAM()
    model.resnet50.load_state_dict(resnet50_state())
    model.classifier.weight.data.copy_(seeded_normal((20, 2048, 1, 1), seed=11, std=0.05))
    model.eval()  # the reference's train() override returns None, so eval() does too
    return model


def irn_class_rows(image: np.ndarray) -> np.ndarray:
    """Rows for IRN_CLASSES from the (dilated) reference backbone's layer 4 on the image."""
    import net.resnet50
    import net.resnet50_cam
    import voc12.dataloader as loader

    model = irn_cam_model(net, dilated=True)
    img = torch.from_numpy(loader.TorchvisionNormalize()(image).transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        features = model.stage4(model.stage3(model.stage2(model.stage1(img))))[0]
    return contrast_rows(features, IRN_PAIRS)


def irn_make_cam(image: np.ndarray, rows: np.ndarray, dilated: bool, bilinear: bool) -> np.ndarray:
    """step/make_cam.py `_work` on one image: its high_res CAMs (K x H x W)."""
    import net.resnet50
    import net.resnet50_cam
    import step.make_cam
    import voc12.dataloader as loader

    model = irn_cam_model(net, dilated)
    model.classifier.weight.data[IRN_CLASSES] = torch.from_numpy(rows)[..., None, None]
    loader.imageio.imread = lambda path: image
    rescale = loader.imutils.pil_rescale
    if bilinear:
        loader.imutils.pil_rescale = bilinear_rescale
    dataset = msf_dataset(loader.VOC12ClassificationDatasetMSF, image, 2007000001,
                          label_vector(IRN_CLASSES, 20), CAM_SCALES, loader.TorchvisionNormalize())
    with tempfile.TemporaryDirectory() as out_dir:
        step.make_cam._work(0, model, [dataset], SimpleNamespace(num_workers=0, cam_out_dir=out_dir))
        saved = np.load(Path(out_dir) / "2007_000001.npy", allow_pickle=True).item()
    loader.imutils.pil_rescale = rescale
    return saved["high_res"].astype(np.float32)


def case_irn_cam() -> dict[str, np.ndarray]:
    """CAM multi-scale + flip inference, as shipped and with wsss's backbone / resize choices."""
    image = irn_image()
    rows = irn_class_rows(image)
    return {
        "image": image, "class_ids": IRN_CLASSES + 1, "scales": np.array(CAM_SCALES), "class_rows": rows,
        "cam_reference": irn_make_cam(image, rows, dilated=False, bilinear=False),
        "cam_dilated": irn_make_cam(image, rows, dilated=True, bilinear=False),
        "cam_dilated_bilinear": irn_make_cam(image, rows, dilated=True, bilinear=True),
    }


def case_irn_relation_labels() -> dict[str, np.ndarray]:
    """step/cam_to_ir_label.py `_work` (dense CRF on confident fg / bg) on blob-shaped CAMs."""
    from step import cam_to_ir_label

    image = irn_image()
    cams = blob_maps(len(IRN_CLASSES), *image.shape[:2], seed=3)
    written = {}
    cam_to_ir_label.imageio.imwrite = lambda path, array: written.setdefault("labels", array)
    with tempfile.TemporaryDirectory() as out_dir:
        np.save(Path(out_dir) / "2007_000001.npy", {"keys": IRN_CLASSES, "high_res": cams})
        args = SimpleNamespace(cam_out_dir=out_dir, ir_label_out_dir=out_dir, conf_fg_thres=0.30,
                               conf_bg_thres=0.05, num_workers=2)
        cam_to_ir_label._work(0, [[{"name": "2007000001", "img": image}]], args)
    return {"image": image, "cams": cams, "class_ids": IRN_CLASSES + 1, "fg_threshold": np.array(0.30),
            "bg_threshold": np.array(0.05), "labels": written["labels"]}


def loss_labels() -> np.ndarray:
    """A stride-4 relation label map: background, two classes, an ignored band."""
    maps = blob_maps(2, LOSS_GRID, LOSS_GRID, seed=5)
    labels = np.where(maps.max(0) > 0.4, maps.argmax(0) + 1, 0).astype(np.uint8)
    labels[(maps.max(0) > 0.25) & (maps.max(0) <= 0.4)] = 255
    return labels


def framed(labels: np.ndarray) -> np.ndarray:
    """The label map with IRN's excluded border (bottom, left and right `FRAME` pixels) ignored."""
    out = labels.copy()
    out[-FRAME:] = 255
    out[:, :FRAME] = 255
    out[:, -FRAME:] = 255
    return out


def irn_reference_losses(model, path_index, labels, edge_logits, displacement) -> dict[str, np.ndarray]:
    """AffinityDisplacementLoss's pair losses and the label extraction of the reference; the
    reductions are step/train_irn.py's loop, re-expressed here (that loop needs a data set)."""
    import voc12.dataloader as loader

    edge = torch.tensor(edge_logits, requires_grad=True)
    disp = torch.tensor(displacement, requires_grad=True)
    aff = model.to_affinity(torch.sigmoid(edge))
    pos_aff, neg_aff = -torch.log(aff + 1e-5), -torch.log(1.0 + 1e-5 - aff)
    pair_disp = model.to_pair_displacement(disp)
    dp_fg, dp_bg = model.to_displacement_loss(pair_disp), torch.abs(pair_disp)
    bg_pos, fg_pos, neg = (t[None] for t in loader.GetAffinityLabelFromIndices(
        path_index.src_indices, path_index.dst_indices)(labels))
    bg_pos_loss = torch.sum(bg_pos * pos_aff) / (torch.sum(bg_pos) + 1e-5)
    fg_pos_loss = torch.sum(fg_pos * pos_aff) / (torch.sum(fg_pos) + 1e-5)
    neg_loss = torch.sum(neg * neg_aff) / (torch.sum(neg) + 1e-5)
    dp_fg_loss = torch.sum(dp_fg * fg_pos[:, None]) / (2 * torch.sum(fg_pos) + 1e-5)
    dp_bg_loss = torch.sum(dp_bg * bg_pos[:, None]) / (2 * torch.sum(bg_pos) + 1e-5)
    total = (bg_pos_loss / 2 + fg_pos_loss / 2 + neg_loss) / 2 + (dp_fg_loss + dp_bg_loss) / 2
    total.backward()
    values = {"bg_pos": bg_pos_loss, "fg_pos": fg_pos_loss, "neg": neg_loss, "dp_fg": dp_fg_loss,
              "dp_bg": dp_bg_loss, "total": total}
    out = {key: np.array(value.item(), np.float64) for key, value in values.items()}
    out["grad_edge"], out["grad_displacement"] = edge.grad.numpy(), disp.grad.numpy()
    return out


def path_geometry(path_index) -> dict[str, np.ndarray]:
    """PathIndex's search directions and each one's path pixels (flattened, with lengths)."""
    paths = [path for group in path_index.search_paths for path in group]
    return {"directions": path_index.search_dst.astype(np.int64),
            "path_lengths": np.array([len(p) for p in paths]),
            "path_cells": np.concatenate(paths).astype(np.int64)}


def case_irn_losses() -> dict[str, np.ndarray]:
    """net/resnet50_irn.py AffinityDisplacementLoss + misc/indexing.py PathIndex (radius 10)."""
    import misc.indexing
    import net.resnet50
    import net.resnet50_irn

    path_index = misc.indexing.PathIndex(radius=IRN_RADIUS_TRAIN, default_size=(LOSS_GRID, LOSS_GRID))
    with reference_resnet(net.resnet50, dilated=False):
        model = net.resnet50_irn.AffinityDisplacementLoss(path_index)
    edge_logits = seeded_normal((1, 1, LOSS_GRID, LOSS_GRID), seed=21, std=2.0).numpy()
    displacement = seeded_normal((1, 2, LOSS_GRID, LOSS_GRID), seed=22, std=3.0).numpy()
    labels = loss_labels()
    out = {"edge_logits": edge_logits, "displacement": displacement, "labels": labels,
           "labels_framed": framed(labels), **path_geometry(path_index)}
    for variant, label_map in (("plain", labels), ("framed", framed(labels))):
        result = irn_reference_losses(model, path_index, label_map, edge_logits, displacement)
        out.update({f"{variant}_{key}": value for key, value in result.items()})
    return out


def walk_boundary(height: int, width: int) -> np.ndarray:
    """A boundary map with a wall across the image (one gap) and low noise elsewhere."""
    boundary = np.abs(seeded_normal((height, width), seed=31, std=0.05).numpy())
    boundary[:, width // 2] = 0.95
    boundary[height // 3: height // 3 + 2, width // 2] = 0.1
    return np.clip(boundary, 0, 1).astype(np.float32)


def case_irn_walk() -> dict[str, np.ndarray]:
    """misc/indexing.py propagate_to_edge (radius 5, beta 10, exp_times 8: make_sem_seg_labels)."""
    import misc.indexing

    cams = blob_maps(2, 12, 16, seed=7)
    boundary = walk_boundary(12, 16)
    walked = misc.indexing.propagate_to_edge(torch.from_numpy(cams), torch.from_numpy(boundary),
                                             radius=5, beta=10, exp_times=8)
    return {"cams": cams, "boundary": boundary, "radius": np.array(5), "beta": np.array(10.0),
            "exp_times": np.array(8), "walked": walked[:, 0].numpy()}


# --------------------------------------------------------------------------- SIPE and AE-SIPE


def sipe_image() -> np.ndarray:
    return synthetic_image(96, 128, seed=2)


SIPE_PAIRS = (((0, 0), (5, 7)), ((5, 0), (0, 7)), ((2, 6), (3, 1)))  # on the 6 x 8 layer-4 grid


def reference_sipe_net(module_name: str, class_name: str, calibration: dict | None = None):
    """resnet50_SIPE / resnet50_AE_SIPE `class_name` with the seeded weights (layer 4 dilated),
    calibrated as tests/helpers/golden.py says when `calibration` (from sipe_calibration) is given."""
    import network.resnet50

    module = importlib.import_module(module_name)
    with reference_resnet(network.resnet50, dilated=True):
        model = getattr(module, class_name)(num_cls=SIPE_NUM_CLS)
    state, heads = resnet50_state(), sipe_head_weights(SIPE_NUM_CLS - 1, seed=41)
    if calibration is not None:
        state = calibrated_resnet_state(state, calibration["bn_mean"], calibration["bn_var"])
        heads = centred_side_weights(heads, [calibration[f"side_centre{level}"] for level in range(1, 5)])
        heads["classifier.weight"] = torch.from_numpy(calibration["class_rows"])[..., None, None]
    model.resnet50.load_state_dict(state)
    for name, weight in heads.items():
        getattr(model, name.split(".")[0]).weight.data.copy_(weight)
    model.eval()  # the reference's train() override returns None, so eval() does too
    return model


def sipe_levels(model, image: np.ndarray) -> list[torch.Tensor]:
    """The reference network's four backbone levels (the side projections' inputs) on the image."""
    features, levels = normalised_batch(image), []
    with torch.no_grad():
        features = model.stage0(features)
        for stage in (model.stage1, model.stage2, model.stage3, model.stage4):
            features = stage(features)
            levels.append(features)
    return levels


def sipe_calibration(module_name: str, image: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics measured with the reference network on the image (tests/helpers/golden.py):
    layer 4's last BatchNorm input, each level's mean direction, and contrast classifier rows."""
    model = reference_sipe_net(module_name, "Net")
    captured = []
    hook = model.resnet50.layer4[2].conv3.register_forward_hook(lambda module, args, out: captured.append(out))
    sipe_levels(model, image)
    hook.remove()
    branch = captured[0]
    calibration = {"bn_mean": branch.mean(dim=(0, 2, 3)).numpy(), "bn_var": branch.var(dim=(0, 2, 3)).numpy(),
                   "class_rows": np.zeros((SIPE_NUM_CLS - 1, 2048), np.float32)}
    for level in range(1, 5):
        calibration[f"side_centre{level}"] = np.zeros(getattr(model, f"side{level}").in_channels, np.float32)
    model = reference_sipe_net(module_name, "Net", calibration)  # calibrated backbone, sides not yet
    levels = sipe_levels(model, image)
    for level, features in enumerate(levels, start=1):
        calibration[f"side_centre{level}"] = F.normalize(features.mean(dim=(0, 2, 3)), dim=0).numpy()
    calibration["class_rows"] = contrast_rows(levels[-1][0], SIPE_PAIRS)
    return calibration


def normalised_batch(image: np.ndarray) -> torch.Tensor:
    from data import data_voc

    return torch.from_numpy(data_voc.TorchvisionNormalize()(image).transpose(2, 0, 1).copy())[None]


def sipe_training_forward(model, image: np.ndarray, fg_label: np.ndarray, ae: bool) -> dict[str, np.ndarray]:
    """The training forward as train_resnet50_(AE_)SIPE.py calls it, and its two losses
    (re-expressed from the training loop: L_cls + mean |CAM − IS-CAM / max|)."""
    img = normalised_batch(image)
    label = torch.from_numpy(fg_label)[None, :, None, None]
    height, width = img.shape[-2:]
    valid_mask = torch.ones(1, SIPE_NUM_CLS, height, width)
    valid_mask[:, 1:] = valid_mask[:, 1:] * label
    valid_mask = F.interpolate(valid_mask, size=(height // 16, width // 16), mode="nearest")
    if ae:
        import make_cam_with_pamr

        outputs = model(img, valid_mask, make_cam_with_pamr.denormalization(img.clone()), label)
    else:
        outputs = model(img, valid_mask)
    is_cam = outputs["IS_cam"] / (F.adaptive_max_pool2d(outputs["IS_cam"], (1, 1)) + 1e-5)
    loss_cls = F.multilabel_soft_margin_loss(outputs["score"], label)
    loss_gsc = torch.mean(torch.abs(outputs["cam"] - is_cam))
    out = {"score": outputs["score"].flatten(1), "cam": outputs["cam"],
           "seeds": outputs["seeds"].argmax(1), "is_cam": outputs["IS_cam"], "loss_cls": loss_cls,
           "loss_gsc": loss_gsc}
    if ae:
        out["pamr_seeds"] = outputs["pamr"].argmax(1)
    return {key: value.detach().numpy() for key, value in out.items()}


def sipe_single_scale(model, image: np.ndarray, fg_label: np.ndarray) -> np.ndarray:
    """The inference class `CAM` on the image and its mirror: its IS-CAM (C+1 x h x w)."""
    img = normalised_batch(image)
    pair = torch.cat([img, img.flip(-1)])
    label = torch.from_numpy(np.concatenate([[1.0], fg_label]).astype(np.float32))[:, None, None]
    with torch.no_grad():
        if model.__class__.__module__.endswith("AE_SIPE"):
            import make_cam_with_pamr

            return model(pair, label, make_cam_with_pamr.denormalization(pair.clone()))[1].numpy()
        return model(pair, label)[1].numpy()


def sipe_multiscale(make_cam_module, model, image: np.ndarray, fg_label: np.ndarray, npy_dir: str) -> np.ndarray:
    """make_cam.py / make_cam_with_pamr.py `_work` on one image (scales SIPE_SCALES): the saved
    IS_CAM of background + labelled classes, with wsss's bilinear image resize."""
    from data import data_voc

    data_voc.imageio.imread = lambda path: image
    data_voc.imutils.pil_rescale = bilinear_rescale
    dataset = msf_dataset(data_voc.VOC12ClsDatasetMSF, image, "img", fg_label, SIPE_SCALES,
                          data_voc.TorchvisionNormalize())
    with tempfile.TemporaryDirectory() as session:
        os.makedirs(Path(session) / npy_dir)
        args = SimpleNamespace(num_workers=0, session_name=session, visualize=False, make_dataset="train")
        make_cam_module._work(0, model, [dataset], args)
        saved = np.load(Path(session) / npy_dir / "img.npy", allow_pickle=True).item()
    return saved["IS_CAM"].astype(np.float32)


PARTIAL_LABEL = np.array([1.0, 0.0, 1.0], np.float32)  # class 2 not in the image
FULL_LABEL = np.array([1.0, 1.0, 1.0], np.float32)


def sipe_case(module_name: str, make_cam_name: str, npy_dir: str, ae: bool) -> dict[str, np.ndarray]:
    image = sipe_image()
    calibration = sipe_calibration(module_name, image)
    net = reference_sipe_net(module_name, "Net", calibration)
    cam = reference_sipe_net(module_name, "CAM", calibration)
    make_cam_module = importlib.import_module(make_cam_name)
    out = {"image": image, "partial_label": PARTIAL_LABEL, "full_label": FULL_LABEL,
           "scales": np.array(SIPE_SCALES), **calibration}
    out.update({f"train_{k}": v for k, v in sipe_training_forward(net, image, PARTIAL_LABEL, ae).items()})
    for name, label in (("full", FULL_LABEL), ("partial", PARTIAL_LABEL)):
        out[f"infer_{name}"] = sipe_single_scale(cam, image, label)
        out[f"multiscale_{name}"] = sipe_multiscale(make_cam_module, cam, image, label, npy_dir)
    return out


def case_sipe() -> dict[str, np.ndarray]:
    """chenqi1126/SIPE network/resnet50_SIPE.py (Net: training forward; CAM: inference) and make_cam.py."""
    return sipe_case("network.resnet50_SIPE", "make_cam", "npy", ae=False)


def case_ae_sipe() -> dict[str, np.ndarray]:
    """IJS1016/AE_SIPE network/resnet50_AE_SIPE.py (with its PAMR) and make_cam_with_pamr.py."""
    return sipe_case("network.resnet50_AE_SIPE", "make_cam_with_pamr", "npy_train", ae=True)


# --------------------------------------------------------------------------- PAMR and EPS


def load_file_module(path: str, name: str):
    """Import one file of a snapshot by path (its package __init__ imports much more)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def case_pamr() -> dict[str, np.ndarray]:
    """visinf/1-stage-wseg models/mods/pamr.py PAMR(10, [1, 2, 4, 8, 12, 24])."""
    module = load_file_module("models/mods/pamr.py", "reference_pamr")
    image = torch.from_numpy(synthetic_image(32, 40, seed=4).astype(np.float32) / 255).permute(2, 0, 1)[None]
    mask = torch.from_numpy(blob_maps(3, 16, 20, seed=6))[None]
    with torch.no_grad():
        refined = module.PAMR(num_iter=10, dilations=[1, 2, 4, 8, 12, 24])(image, mask)
    return {"image": image.numpy(), "mask": mask.numpy(), "refined": refined.numpy()}


def case_eps() -> dict[str, np.ndarray]:
    """halbielee/EPS eps.py get_eps_loss (tau 0.4, lambda 0.5)."""
    import eps

    cam = seeded_normal((2, 4, 12, 16), seed=51, std=3.0)
    saliency = torch.from_numpy(np.stack([blob_maps(1, 48, 64, seed=8), blob_maps(1, 48, 64, seed=9)]))
    label = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    loss, fg_map, bg_map, sal_pred = eps.get_eps_loss(cam, saliency, 3, label, tau=0.4, lam=0.5)
    return {"cam": cam.numpy(), "saliency": saliency.numpy(), "label": label.numpy(), "tau": np.array(0.4),
            "lam": np.array(0.5), "loss": loss.numpy(), "fg_map": fg_map.numpy(),
            "one_minus_bg_map": bg_map.numpy(), "sal_pred": sal_pred.numpy()}


# --------------------------------------------------------------------------- driver

# name: (function, snapshot option, modules to stub when missing)
CASES = {
    "irn_cam": (case_irn_cam, "irn", ("imageio",)),
    "irn_relation_labels": (case_irn_relation_labels, "irn", ("imageio",)),
    "irn_losses": (case_irn_losses, "irn", ("imageio",)),
    "irn_walk": (case_irn_walk, "irn", ("imageio",)),
    "sipe": (case_sipe, "sipe", ("imageio", "matplotlib", "matplotlib.pyplot")),
    "ae_sipe": (case_ae_sipe, "ae_sipe", ("imageio", "matplotlib", "matplotlib.pyplot")),
    "pamr": (case_pamr, "pamr", ()),
    "eps": (case_eps, "eps", ()),
}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed to a temporary name in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz", delete=False) as tmp:
        np.savez_compressed(tmp, **{key: np.asarray(value) for key, value in arrays.items()})
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp.name, 0o666 & ~umask)  # a temporary file is private; the golden files are not
    os.replace(tmp.name, path)


def generate(name: str, ref_dir: Path, out_dir: Path) -> None:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        arrays = pool.submit(run_case, name, str(ref_dir)).result()
    path = out_dir / f"{name}.npz"
    write_npz(path, arrays)
    print(f"{path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}: "
          f"{path.stat().st_size / 1024:.0f} KiB")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for option in ("irn", "sipe", "ae-sipe", "eps", "pamr"):
        parser.add_argument(f"--{option}", type=Path, help=f"a checkout of the {option} reference repository")
    parser.add_argument("--only", nargs="+", choices=sorted(CASES), help="cases to regenerate (default: all "
                        "whose repository is given)")
    parser.add_argument("--out", type=Path, default=GOLDEN_DIR, help="output folder (default tests/golden)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for name in args.only or sorted(CASES):
        ref_dir = getattr(args, CASES[name][1])
        if ref_dir is None:
            print(f"{name}: skipped (no --{CASES[name][1].replace('_', '-')})")
            continue
        generate(name, ref_dir.resolve(), args.out.resolve())


if __name__ == "__main__":
    main()
