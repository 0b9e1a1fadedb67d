"""`wsss serve` as a real process on the loopback: every request that knocked the former server over
or leaked its internals is refused with a 4xx naming what was wrong, and the server still answers
the next valid request with what `Segmenter.segment` gives (a tiny untrained network in a real
sqlite MLflow store)."""

import http.client
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsss.serve.large_images import segment_bounded

from tests.helpers.segmenters import random_image, register_tiny, tiny_segmenter
from tests.helpers.servers import free_port, running_server

MAX_SIDE = 48  # small, so that the bounded path runs on small test images


def _post(port: int, body: bytes, headers: dict, path: str = "/invocations") -> tuple[int, bytes, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("content-type", "")
    finally:
        connection.close()


def _declared_only(port: int, declared: int, first_bytes: bytes) -> tuple[int, bytes]:
    """A request whose headers announce `declared` bytes but whose body is never sent in full (an
    8000 x 8000 image as JSON is 768 MB): the server must answer from the headers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.putrequest("POST", "/invocations")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(declared))
        connection.endheaders(first_bytes)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _chunked(port: int, chunks: int, chunk: bytes) -> tuple[int, bytes]:
    """A body without Content-Length (chunked transfer) that grows past the limit as it streams."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/invocations", body=(chunk for _ in range(chunks)),
                           headers={"Content-Type": "application/json"}, encode_chunked=True)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _assert_refused(status: int, body: bytes, expected_status: int, *words: str) -> None:
    text = body.decode()
    assert status == expected_status, text
    message = json.loads(text)["message"]
    for word in words:
        assert word in message, message
    assert "Traceback" not in text and os.sep + "wsss" + os.sep not in text and str(Path.cwd()) not in text


@pytest.fixture
def server(mlflow_db, tmp_path):
    """`wsss serve` of a registered tiny network, 1 MiB requests, 1 million pixels; yields
    (port, the segmenter)."""
    segmenter = tiny_segmenter()
    register_tiny(tmp_path, segmenter)
    port = free_port()
    command = [sys.executable, "-m", "wsss.cli", "--project", str(tmp_path), "serve", "--model", "models:/seg/1",
               "--port", str(port), "--max-request-mb", "1", "--max-pixels", "1000000", "--max-side", str(MAX_SIDE),
               "--device", "cpu"]
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_db)
    with running_server(command, port, tmp_path, env, tmp_path / "serve.log") as process:
        yield port, segmenter
        assert process.poll() is None, (tmp_path / "serve.log").read_text()  # alive after every request


def test_the_server_refuses_what_would_kill_it_and_answers_the_next_request(server):
    port, segmenter = server
    # the probe: an 8000 x 8000 image as JSON (768 MB), refused from its Content-Length
    _assert_refused(*_declared_only(port, 768_000_000, b'{"inputs": {"image": [[['), 413, "1048576 bytes",
                    "--max-request-mb")
    _assert_refused(*_chunked(port, 40, b" " * 65536), 413, "--max-request-mb")
    # an encoded 8000 x 8000 image is small in bytes: refused by its header, before decoding
    big = _png(np.zeros((8000, 8000, 3), np.uint8))
    assert len(big) < 1 << 20
    status, body, _ = _post(port, big, {"Content-Type": "image/png"})
    _assert_refused(status, body, 413, "8000 x 8000", "--max-pixels")
    image = random_image(1, (30, 40))
    bad = [
        ({"inputs": {"image": image.tolist()}, "params": {"scales": [-1]}}, "params.scales.0"),
        ({"inputs": {"image": image.tolist()}, "params": {"hflip": "sometimes"}}, "params.hflip"),
        ({"inputs": {"image": image.tolist()}, "params": {"colour": 1}}, "colour"),
        ({"inputs": {"image": image[..., 0].tolist()}}, "H x W x 3"),
        ({"inputs": {"image": (image.astype(float) + 0.5).tolist()}}, "uint8"),
        ({"inputs": {"image": [[[1, 2, 3]], [[1, 2]]]}}, "rectangular"),
        ({"inputs": {"picture": image.tolist()}}, "'image'"),
        ({"instances": []}, '"inputs"'),
        ([1, 2, 3], '"inputs"'),
    ]
    for request, word in bad:
        status, body, _ = _post(port, json.dumps(request).encode(), {"Content-Type": "application/json"})
        _assert_refused(status, body, 400, word)
    _assert_refused(*_post(port, b"{not json", {"Content-Type": "application/json"})[:2], 400, "not valid JSON")
    _assert_refused(*_post(port, b"\x89PNG broken", {"Content-Type": "image/png"})[:2], 400, "not a readable image")
    _assert_refused(*_post(port, b"{}", {"Content-Type": ""})[:2], 415, "Content-Type")
    _assert_refused(*_post(port, b"{}", {"Content-Type": "text/plain"})[:2], 415, "text/plain")
    status, body, _ = _post(port, _png(image), {"Content-Type": "image/png"}, "/invocations?scales=-1")
    _assert_refused(status, body, 400, "params.scales.0")

    # and then valid requests: JSON, params, and an encoded image answered as a PNG
    status, body, _ = _post(port, json.dumps({"inputs": {"image": image.tolist()}}).encode(),
                            {"Content-Type": "application/json"})
    assert status == 200, body
    assert np.array_equal(np.array(json.loads(body)["predictions"], np.uint8), segmenter.segment(image))
    flipped = segmenter.settings.replace(scales=[1.0], hflip=True)
    status, body, _ = _post(port, json.dumps({"inputs": {"image": image.tolist()},
                                              "params": {"scales": [1], "hflip": True}}).encode(),
                            {"Content-Type": "application/json"})
    assert np.array_equal(np.array(json.loads(body)["predictions"], np.uint8), segmenter.segment(image, flipped))
    large = random_image(2, (150, 100))  # longer side above --max-side: segmented at 48 pixels
    status, body, kind = _post(port, _png(large), {"Content-Type": "image/png", "Accept": "image/png"},
                               "/invocations?hflip=true&scales=1")
    assert status == 200 and kind == "image/png", body
    answer = np.array(Image.open(io.BytesIO(body)))
    assert answer.shape == large.shape[:2]
    assert np.array_equal(answer, segment_bounded(segmenter, large, flipped, MAX_SIDE))


def test_a_large_image_is_segmented_at_max_side_and_brought_back_to_full_size():
    """Within max_side: exactly Segmenter.segment. Above it: the network sees the reduced image,
    and the label map, full size, is the bilinear upsampling of its probabilities."""
    import torch
    import torch.nn.functional as F

    segmenter = tiny_segmenter()
    torch.manual_seed(0)
    with torch.no_grad():  # the untrained head answers 1/3 for every class: give it opinions
        for weight in segmenter.network.parameters():
            weight.normal_(0, 0.2)
    small = random_image(3, (40, 30))
    assert np.array_equal(segment_bounded(segmenter, small, max_side=40), segmenter.segment(small))
    large = random_image(4, (90, 60))
    labels = segment_bounded(segmenter, large, max_side=45)
    reduced = np.asarray(Image.fromarray(large).resize((30, 45), Image.BILINEAR))
    probabilities = torch.from_numpy(segmenter.probabilities(reduced))[None]
    full = F.interpolate(probabilities, size=(90, 60), mode="bilinear", align_corners=False)[0]
    top = full.topk(2, dim=0).values
    decided = (top[0] - top[1] > 1e-5).numpy()  # an untrained network ties classes to float rounding
    assert labels.shape == (90, 60) and decided.mean() > 0.5
    assert np.array_equal(labels[decided], full.argmax(0).numpy()[decided])


def test_the_upsampling_band_by_band_is_one_bilinear_interpolation(monkeypatch):
    import torch
    import torch.nn.functional as F

    from wsss.serve import large_images

    monkeypatch.setattr(large_images, "BAND_PIXELS", 500)  # many bands
    probabilities = torch.rand(5, 17, 23, generator=torch.Generator().manual_seed(0))
    for height, width in [(100, 77), (33, 200), (17, 23), (8, 9)]:
        expected = F.interpolate(probabilities[None], size=(height, width), mode="bilinear", align_corners=False)
        assert np.array_equal(large_images.upsample_argmax(probabilities, height, width),
                              expected[0].argmax(0).numpy().astype(np.uint8))


def test_wsss_predict_bounds_a_large_image_as_the_server_does(tmp_path):
    """`wsss predict` on an image above --max-side (an 8000 x 8000 photo was killed for memory):
    the same label map as the server's, at full size."""
    from wsss.serve.predict import predict_files

    segmenter = tiny_segmenter()
    image = random_image(5, (120, 90))
    Image.fromarray(image).save(tmp_path / "photo.png")
    report = predict_files(segmenter, [tmp_path / "photo.png"], tmp_path / "out", max_side=MAX_SIDE)
    labels = np.array(Image.open(report.written[0]))
    assert labels.shape == (120, 90) and np.array_equal(labels, segment_bounded(segmenter, image, None, MAX_SIDE))
