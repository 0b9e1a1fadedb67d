"""The visual gallery (stage `gallery`, `wsss gallery`): row choice, the self-contained page, its
columns from what is on disk, MLflow, and the page in a real headless Chromium.

The fake project holds real files written by the project's own writers (a synthetic data set,
score maps, palette PNGs, boundary maps, a DeepLab checkpoint); the slow test builds the page at
the end of the tiny pipeline.
"""

import base64
import io
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from PIL import Image

from tests.helpers.browser import load_page, needs_browser
from tests.helpers.project import SYNTHETIC_ROOT, run
from wsss.core.dvcfile import pipeline
from wsss.core.errors import DataError
from wsss.core.io import (
    save_boundary_map,
    save_score_map,
    save_state_dict,
    write_json,
    write_palette_png,
)
from wsss.core.params import SyntheticParams
from wsss.data.registry import open_split
from wsss.data.synthetic import generate
from wsss.evaluation.metrics import image_iou
from wsss.serve import gallery as G
from wsss.stages.common import Stage, load_params
from wsss.stages.gallery import GallerySettings, gallery, write_page

ROOT = Path(__file__).resolve().parents[1]
CLASS_NAMES = ["background", "aeroplane", "boat", "bottle", "car", "cow", "person", "train"]


# -- row choice and the page, pure --------------------------------------------------------------
def test_choose_ranks_worst_and_best_and_draws_a_fixed_sample():
    ids = [f"im{i}" for i in range(10)]
    scores = {image_id: i / 10 for i, image_id in enumerate(ids)} | {"im3": None}  # None: not ranked
    rows = G.choose(ids, scores, worst=2, best=2, sample=3, seed=0)
    groups = dict(rows)
    assert [i for i, g in rows][:4] == ["im0", "im1", "im9", "im8"]
    assert groups["im0"][0] == "worst 1" and groups["im1"][0] == "worst 2"
    assert groups["im9"][0] == "best 1" and groups["im8"][0] == "best 2"
    sampled = [i for i, g in rows if "sample" in g]
    assert len(sampled) == 3
    assert G.choose(ids, scores, 2, 2, 3, seed=0) == rows  # the same seed, the same rows
    # the sample does not depend on the scores: two experiments show the same images
    assert [i for i, g in G.choose(ids, None, 2, 2, 3, seed=0)] == sorted(sampled, key=ids.index)
    # an image chosen twice is one row with both groups
    assert dict(G.choose(["a", "b"], {"a": 0.1, "b": 0.2}, 2, 2, 0, 0)) == {
        "a": ["worst 1", "best 2"], "b": ["worst 2", "best 1"]}


def test_image_iou_is_the_mean_over_classes_present_with_255_ignored():
    gt = np.array([[0, 0, 1, 1], [0, 0, 1, 255]])
    pred = np.array([[0, 0, 1, 2], [0, 0, 0, 2]])
    # background 4 / 5, class 1 1 / 3, class 2 (predicted on one counted pixel) 0 / 1
    assert image_iou(gt, pred, 3) == pytest.approx(np.mean([4 / 5, 1 / 3, 0.0]))
    assert image_iou(gt, gt.clip(0, 1), 3) == 1.0
    assert image_iou(np.full((2, 2), 255), np.zeros((2, 2), int), 3) is None


class _Page(HTMLParser):
    """The page's tags, <img> attributes and column titles (the grid's <thead>)."""

    def __init__(self):
        super().__init__()
        self.images, self.headers, self.tags, self._in_thead = [], [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))
        self._in_thead |= tag == "thead"

    def handle_data(self, data):
        if self._in_thead:
            self.headers.append(data)

    def handle_endtag(self, tag):
        self._in_thead &= tag != "thead"


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def _assert_self_contained(page: str) -> _Page:
    parsed = _parse(page)
    assert "script" not in parsed.tags and "link" not in parsed.tags
    assert not re.search(r"(src|href)=\"(?!data:image/png;base64,)", page)  # no file or URL referenced
    assert "http://" not in page and "https://" not in page and "url(" not in page
    for img in parsed.images:  # every picture a PNG of the size the tag says
        with Image.open(io.BytesIO(base64.b64decode(img["src"].split(",", 1)[1]))) as picture:
            assert picture.format == "PNG" and picture.size == (int(img["width"]), int(img["height"]))
    return parsed


def test_page_and_picture_of_rows_with_a_missing_cell():
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    mask = np.zeros((30, 40), np.uint8)
    mask[5:20, 10:30] = 2
    rows = [G.Row("a<1>", ["worst 1"], {"image": G.Panel(image), "gt": G.mask_panel(mask),
                                        "pred": G.mask_panel(mask, "IoU 1.000")}),
            G.Row("b", ["sample"], {"image": G.Panel(image[:20]), "gt": G.mask_panel(mask[:20])}, "note")]
    page = G.html_page(rows, ["image", "gt", "pred"], CLASS_NAMES[:3], {"commit": "abc"}, ["a note"])
    parsed = _assert_self_contained(page)
    assert len(parsed.images) == 5 and "a&lt;1&gt;" in page and "a note" in page and "IoU 1.000" in page
    assert {"background", "aeroplane", "boat", "ignore (255)"} <= set(re.findall(r"</i>([^<]+)</span>", page))
    assert parsed.headers == ["image", "gt", "pred"]
    grid = G.picture(rows, ["image", "gt", "pred"])
    assert grid.dtype == np.uint8 and grid.shape[0] == 2 * (160 + 18)  # panels 160 px tall, caption bands
    band = grid[160 + 18:, -40:]  # the second row's missing "pred" cell stays white
    assert (band[:160] == 255).all()


# -- the fake project ---------------------------------------------------------------------------
@pytest.fixture
def fake_project(tmp_path, monkeypatch):
    """Every input of the gallery, written by the project's own writers: a synthetic set (6 train
    images of two sizes), seeds, evaluate_seeds' threshold, IRN boundary maps, refine and PtReCl
    masks (the ground truth with a different error per image) and an untrained DeepLab."""
    from wsss.methods.segmenter import InferenceSettings, Segmenter

    root = tmp_path / "data"
    generate(root, SyntheticParams(image_sizes=[[40, 52], [56, 44]], num_train=6, num_val=1, seed=3))
    params = {"dataset": {"root": "data"}, "project": {"progress": False, "device": "cpu"},
              "tracking": {"gallery": {"worst": 2, "best": 1, "sample": 2}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")  # the artifacts' paths
    monkeypatch.chdir(tmp_path)
    params = load_params()
    dataset = open_split(params.dataset, "train")
    for n, image_id in enumerate(dataset.ids):
        gt = dataset.load_mask(image_id)
        labels = np.array(sorted(set(np.unique(gt).tolist()) - {0, 255}))
        scores = np.stack([(gt == c).astype(np.float32) * 0.9 for c in labels])
        save_score_map(f"artifacts/seeds/maps/{image_id}.npz", scores, labels)
        save_boundary_map(f"artifacts/irn/boundaries/{image_id}.npz", np.full((gt.shape[0] // 2, gt.shape[1] // 2), 0.1))
        clean = np.where(gt == 255, 0, gt).astype(np.uint8)
        write_palette_png(f"artifacts/refine/masks/{image_id}.png", clean)
        worse, objects = clean.copy(), np.flatnonzero(clean)
        worse.flat[objects[: len(objects) * n // 6]] = 0  # image n loses n/6 of its objects: IoU falls with n
        write_palette_png(f"artifacts/ptrecl/masks/{image_id}.png", worse)
    write_json("metrics/seeds.json", {"bg_threshold": 0.5})
    segmenter = Segmenter.build({"backbone": params.seeds.backbone.model_dump(), "head": "v2", "rates": None},
                                dataset.class_names, InferenceSettings())
    save_state_dict("artifacts/segment/deeplab.pt", segmenter.network.state_dict())
    return tmp_path, dataset


def _settings() -> tuple[GallerySettings, object]:
    params = load_params()
    settings = GallerySettings(params.project, params.dataset, params.seeds, params.refine, params.segment,
                               pipeline().paths)
    return settings, params


def _build(ids: list[str] | None = None) -> str:
    """`wsss gallery --out page.html [--ids ...]`'s page."""
    settings, params = _settings()
    write_page(settings, "page.html", ids, params.tracking.gallery)
    return Path("page.html").read_text()


def _captions(page: str) -> list[str]:
    return re.findall(r'<tr class="caption"><th colspan="\d+">([^<]+)</th>', page)


def test_gallery_of_the_fake_project(fake_project):
    _, dataset = fake_project
    page = _build()
    parsed = _assert_self_contained(page)
    columns = ["image", "ground truth", "seeds (cam)", "IRN (refine stage)", "CRF (computed)", "PAMR (computed)",
               "PtReCl", "segmentation"]
    assert parsed.headers == columns
    captions = _captions(page)
    # PtReCl's masks lose more of the image the later the image: the last two are the worst
    ptrecl = {i: image_iou(dataset.load_mask(i), np.asarray(Image.open(f"artifacts/ptrecl/masks/{i}.png")), 8)
              for i in dataset.ids}
    ranked = sorted(dataset.ids, key=ptrecl.get)
    assert captions[0].startswith(f"worst 1 · {ranked[0]} · final masks (ptrecl) IoU {ptrecl[ranked[0]]:.3f}")
    assert captions[1].startswith("worst 2") and captions[1].split(" · ")[1] == ranked[1]
    assert captions[2].startswith("best 1") and captions[2].split(" · ")[1] == ranked[-1]
    assert sum("sample" in c for c in captions) == 2  # drawn from all images: may repeat a ranked one
    assert len(parsed.images) == len(captions) * len(columns)
    assert "IoU 1.000" in page  # the refine masks are the ground truth
    assert "threshold 0.5" in page and "commit" not in page  # a DVC output: the same bytes at any commit


def test_missing_inputs_leave_columns_out_with_a_note(fake_project):
    shutil.rmtree("artifacts/ptrecl/masks")  # segment.masks is ptrecl: nothing to rank by either
    shutil.rmtree("artifacts/irn/boundaries")
    Path("artifacts/segment/deeplab.pt").unlink()
    _set(Path("params.yaml"), "refine", {"method": "crf", "bg_threshold": 0.3})
    page = _build()
    parsed = _assert_self_contained(page)
    assert parsed.headers == ["image", "ground truth", "seeds (cam)", "CRF (refine stage)", "PAMR (computed)"]
    for missing in ("PtReCl left out", "IRN (computed) left out", "segmentation left out", "no worst / best rows"):
        assert missing in page, missing
    assert all(c.startswith("sample") for c in _captions(page)) and len(_captions(page)) == 2


def test_chosen_ids_and_bad_ones(fake_project):
    _, dataset = fake_project
    page = _build([dataset.ids[4], dataset.ids[1]])
    assert [c.split(" · ")[:2] for c in _captions(page)] == [["chosen", dataset.ids[4]], ["chosen", dataset.ids[1]]]
    with pytest.raises(DataError, match="image id 'nope' is not in split 'train'"):
        _build(["nope"])
    assert not Path("page.html.tmp").exists() and not list(Path(".").glob(".page.html*"))
    Path("artifacts/ptrecl/masks", f"{dataset.ids[0]}.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=f"artifacts/ptrecl/masks/{dataset.ids[0]}.png"):
        _build()


def _set(path: Path, section: str, values: dict) -> None:
    params = yaml.safe_load(path.read_text())
    params.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(params))


def test_stage_writes_page_and_picture_and_logs_them(fake_project, mlflow_db):
    settings, params = _settings()
    gallery(Stage.of("gallery", params), settings, params.tracking.gallery)
    page = Path("results/gallery/index.html").read_text()
    _assert_self_contained(page)
    rows = len(_captions(page))
    assert 3 <= rows <= 5  # 2 worst, 1 best, 2 sampled (which may be among them)
    with Image.open("results/gallery/gallery.png") as grid:
        assert grid.mode == "RGB" and grid.height == rows * (160 + 18)
    client = mlflow.MlflowClient(mlflow_db)
    run = client.search_runs([client.get_experiment_by_name("wsss").experiment_id],
                             filter_string="tags.`wsss.stage` = 'gallery'")[0]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"gallery.png", "index.html"}
    assert run.data.metrics["rows"] == rows and run.data.params["tracking.gallery.worst"] == "2"


def test_wsss_gallery_command_runs_the_stage_code(fake_project, monkeypatch):
    from wsss.cli import main

    folder, dataset = fake_project
    monkeypatch.chdir(ROOT)  # --project names the project
    assert main(["--project", str(folder), "gallery", "--worst", "0", "--best", "1", "--sample", "0"]) == 0
    captions = _captions((folder / "results/gallery/index.html").read_text())
    assert len(captions) == 1 and captions[0].startswith(f"best 1 · {dataset.ids[0]}")
    assert main(["--project", str(folder), "gallery", "--ids", "nope", "--out", "x.html"]) == 2


# -- in a real browser --------------------------------------------------------------------------
def assert_opens_cleanly(page: Path, rows: int, columns: int) -> None:
    """The page loads in headless Chromium with every image decoded, no console error, no request
    but the page and its inline images, and a screenshot that is not one colour."""
    report = load_page(page.resolve().as_uri())
    assert report.ready_state == "complete" and report.title == "wsss gallery"
    assert report.errors == []
    assert len(report.images) == rows * columns
    broken = [img["alt"] for img in report.images if not (img["complete"] and img["naturalWidth"] > 0)]
    assert broken == []
    assert {url.split(":", 1)[0] for url in report.requests} <= {"file", "data"}
    with Image.open(io.BytesIO(report.screenshot)) as shot:
        colours = np.unique(np.asarray(shot.convert("RGB")).reshape(-1, 3), axis=0)
    assert len(colours) > 50  # pictures, not a blank page


@needs_browser
def test_page_opens_in_headless_chromium(fake_project):
    page = _build()
    assert_opens_cleanly(Path("page.html"), rows=len(_captions(page)), columns=8)


@needs_browser
def test_the_browser_check_sees_a_broken_page(tmp_path):
    """The check can fail: a missing file, an undecodable picture, a console error and an uncaught
    exception are reported."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>x</title></head><body><img alt="bad" '
                    'src="data:image/png;base64,AAAA"><img alt="gone" src="gone.png">'
                    '<script>console.error("boom")</script><script>throw new Error("bang")</script></body></html>')
    report = load_page(page.as_uri())
    assert [img["naturalWidth"] for img in report.images] == [0, 0]
    assert any("boom" in e for e in report.errors) and any("ERR_FILE_NOT_FOUND" in e for e in report.errors)
    assert any(e.startswith("exception:") and "bang" in e for e in report.errors)


@pytest.mark.slow
@needs_browser
def test_gallery_at_the_end_of_the_tiny_pipeline(finished_project):
    """`wsss repro` of the tiny pipeline (the session's, copied) ends with the gallery stage: its
    page (all eight columns, 4 + 4 + 4 rows of 24 images) opens cleanly in Chromium, and
    `wsss gallery --ids` writes another."""
    cwd, env = finished_project
    assert "up to date" in run(["dvc", "status", "gallery"], cwd, env).stdout  # the page is the stage's output
    page = cwd / "results/gallery/index.html"
    captions = _captions(page.read_text())
    assert sum(c.startswith("worst") for c in captions) == 4 and sum(c.startswith("best") for c in captions) == 4
    assert_opens_cleanly(page, rows=len(captions), columns=8)
    ids = (cwd / SYNTHETIC_ROOT / "ImageSets/Segmentation/train.txt").read_text().split()[:2]
    out = run(["wsss", "gallery", "--ids", *ids, "--out", "two.html"], cwd, env)
    assert "2 rows in two.html" in out.stdout
    assert_opens_cleanly(cwd / "two.html", rows=2, columns=8)
    assert "up to date" in run(["dvc", "status", "gallery"], cwd, env).stdout  # the stage's page untouched
