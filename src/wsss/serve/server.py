"""`wsss serve`: the segmentation network over HTTP, with limits no request can get past.

The protocol is MLflow's scoring server's (`GET /ping`, `GET /health`, `GET /version`,
`POST /invocations` with ``{"inputs": {"image": H x W x 3 nested lists}, "params": {...}}``,
answered ``{"predictions": label map}``), so a client of `mlflow models serve` works unchanged.
It also takes an encoded image as the body (``Content-Type: image/png``, ``image/jpeg``...) with
the params in the query string (``?scales=1,0.5&hflip=true``), far smaller than JSON for a big
photo, and answers a palette PNG instead of JSON when the request says ``Accept: image/png``.

What holds it up (`Limits`): a body larger than `max_request_bytes` is refused with 413 before
it is read (by its Content-Length, or as it streams in); an image of more than `max_pixels`
pixels is refused with 413 (an encoded image by its header, before it is decoded); a larger
image than `max_side` on its longer side is segmented at that size (wsss.serve.large_images);
one request is decoded and segmented at a time, so memory is bounded by one request's image
whatever number of clients call at once. Params are checked by the rules `wsss predict` uses
(params.yaml's `segment.infer`). Every malformed request gets a 4xx whose JSON body
(``{"error_code", "message"}``, as MLflow's) says what was wrong; an unexpected failure gets a
500 with no traceback or path (the server's log has them).
"""

from __future__ import annotations

import io
import json
import sys
import threading
import traceback
from dataclasses import dataclass

import numpy as np

from wsss.core.errors import WsssError
from wsss.serve.large_images import MAX_SIDE

IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/tiff", "image/webp")


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server (`wsss serve --max-request-mb --max-pixels --max-side`)."""

    max_request_bytes: int = 64 * 2**20  # about a 1300 x 1300 image as JSON lists, far more encoded
    max_pixels: int = 40_000_000  # a 40-megapixel photo (7300 x 5500) decoded is 120 MB
    max_side: int = MAX_SIDE  # inference size bound (wsss.serve.large_images)


class RequestError(Exception):
    """A request the server refuses: its HTTP status and a message for the client."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def build_app(segmenter, limits: Limits = Limits(), model_name: str = ""):
    """The ASGI app serving `segmenter` (wsss.methods.segmenter.Segmenter) within `limits`."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    import wsss

    one_at_a_time = threading.Lock()

    def answer(body: bytes, content_type: str, query, accept: str) -> Response:
        with one_at_a_time:
            image, params = _decode(body, content_type, query, limits)
            labels = _segment(segmenter, image, params, limits)
        if "image/png" in accept:
            return Response(_png(labels), media_type="image/png")
        return Response(_json_predictions(labels), media_type="application/json")

    async def invocations(request) -> Response:
        try:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if not content_type:
                raise RequestError(415, "BAD_REQUEST", "no Content-Type: send application/json "
                                   f"({{\"inputs\": {{\"image\": ...}}}}) or an encoded image ({', '.join(IMAGE_TYPES)})")
            body = await _read_body(request, limits.max_request_bytes)
            return await run_in_threadpool(answer, body, content_type, request.query_params,
                                           request.headers.get("accept", ""))
        except RequestError as exc:
            return JSONResponse({"error_code": exc.code, "message": exc.message}, status_code=exc.status)
        except Exception:  # a bug, not the request: the log has it, the client gets no internals
            traceback.print_exc(file=sys.stderr)
            return JSONResponse({"error_code": "INTERNAL_ERROR",
                                 "message": "internal error while segmenting; the server's log has the details"},
                                status_code=500)

    async def ping(request) -> Response:
        return PlainTextResponse("\n")

    async def version(request) -> Response:
        return JSONResponse({"wsss": wsss.__version__, "model": model_name})

    routes = [Route("/ping", ping, methods=["GET"]), Route("/health", ping, methods=["GET"]),
              Route("/version", version, methods=["GET"]), Route("/invocations", invocations, methods=["POST"])]
    return Starlette(routes=routes)


async def _read_body(request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(400, "BAD_REQUEST", f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise RequestError(413, "REQUEST_TOO_LARGE", _too_large(int(declared), limit))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, "REQUEST_TOO_LARGE", _too_large(size, limit, "at least "))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int, qualifier: str = "") -> str:
    return (f"request body of {qualifier}{size} bytes exceeds the server's limit of {limit} bytes "
            f"(wsss serve --max-request-mb {limit / 2**20:g}); send the image encoded (Content-Type: image/png "
            "or image/jpeg) rather than as JSON lists, or a smaller image")


def _decode(body: bytes, content_type: str, query, limits: Limits) -> tuple[np.ndarray, dict]:
    """The request's image (H x W x 3 uint8) and params."""
    if content_type == "application/json":
        return _decode_json(body, limits)
    if content_type in IMAGE_TYPES:
        return _decode_image(body, limits), _query_params(query)
    raise RequestError(415, "BAD_REQUEST", f"Content-Type {content_type!r} is not served: send application/json "
                       f"or an encoded image ({', '.join(IMAGE_TYPES)})")


def _decode_json(body: bytes, limits: Limits) -> tuple[np.ndarray, dict]:
    from wsss.methods.segmenter import check_image

    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, "BAD_REQUEST", f"the body is not valid JSON ({exc})") from None
    if not isinstance(request, dict) or "inputs" not in request:
        raise RequestError(400, "BAD_REQUEST", 'expected a JSON object {"inputs": {"image": H x W x 3 nested lists '
                           'of 0..255}, "params": {...}}')
    unknown = sorted(set(request) - {"inputs", "params"})
    if unknown:
        raise RequestError(400, "BAD_REQUEST", f"unknown field(s) {unknown}: a request holds 'inputs' and 'params'")
    inputs = request["inputs"]
    if isinstance(inputs, dict):
        if set(inputs) != {"image"}:
            raise RequestError(400, "BAD_REQUEST", f"expected one input named 'image', got {sorted(inputs)}")
        inputs = inputs["image"]
    try:
        array = np.asarray(inputs)
    except ValueError as exc:  # ragged lists
        raise RequestError(400, "BAD_REQUEST", f"'image' is not a rectangular H x W x 3 array ({exc})") from None
    if array.ndim == 3 and array.shape[0] * array.shape[1] > limits.max_pixels:
        raise RequestError(413, "IMAGE_TOO_LARGE", _too_many_pixels(array.shape[0], array.shape[1], limits))
    try:
        image = check_image(array)
    except ValueError as exc:
        raise RequestError(400, "BAD_REQUEST", f"'image': {exc}") from None
    params = request.get("params") or {}
    if not isinstance(params, dict):
        raise RequestError(400, "BAD_REQUEST", f"'params' must be an object, got {type(params).__name__}")
    return image, params


def _decode_image(body: bytes, limits: Limits) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(body)) as encoded:
            width, height = encoded.size  # the header only: nothing decoded yet
            if width * height > limits.max_pixels:
                raise RequestError(413, "IMAGE_TOO_LARGE", _too_many_pixels(height, width, limits))
            return np.array(encoded.convert("RGB"), dtype=np.uint8)
    except RequestError:
        raise
    except Exception as exc:  # PIL raises many types on bad bytes, DecompressionBombError included
        raise RequestError(400, "BAD_REQUEST", f"the body is not a readable image ({type(exc).__name__})") from None


def _too_many_pixels(height: int, width: int, limits: Limits) -> str:
    return (f"image of {height} x {width} = {height * width} pixels exceeds the server's limit of {limits.max_pixels} "
            f"pixels (wsss serve --max-pixels)")


def _query_params(query) -> dict:
    """Params from a query string: scales=1,0.5 hflip=true crf=false."""
    params: dict = {}
    for key, value in query.items():
        if key == "scales":
            try:
                params[key] = [float(part) for part in value.split(",")]
            except ValueError:
                raise RequestError(400, "BAD_PARAMS", f"scales: {value!r} is not a comma-separated list of numbers") \
                    from None
        elif value.lower() in ("true", "false"):
            params[key] = value.lower() == "true"
        else:
            params[key] = value
    return params


def _segment(segmenter, image: np.ndarray, params: dict, limits: Limits) -> np.ndarray:
    from wsss.serve.large_images import segment_bounded
    from wsss.serve.predict import inference_settings

    unknown = sorted(set(params) - {"scales", "hflip", "crf"})
    if unknown:
        raise RequestError(400, "BAD_PARAMS", f"unknown param(s) {unknown}: the model takes scales, hflip, crf")
    try:
        settings = inference_settings(segmenter, params.get("scales"), params.get("hflip"), params.get("crf"),
                                      prefix="params.")
    except WsssError as exc:
        raise RequestError(400, "BAD_PARAMS", str(exc)) from None
    return segment_bounded(segmenter, image, settings, limits.max_side)


def _json_predictions(labels: np.ndarray) -> bytes:
    """``{"predictions": [[...], ...]}`` written row by row (no list of H x W Python ints)."""
    rows = (",".join(map(str, row.tolist())) for row in labels)
    return b'{"predictions": [' + ",".join(f"[{row}]" for row in rows).encode() + b"]}"


def _png(labels: np.ndarray) -> bytes:
    from PIL import Image

    from wsss.core.io import voc_palette

    image = Image.fromarray(labels, mode="P")
    image.putpalette(voc_palette())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def serve(segmenter, host: str, port: int, limits: Limits = Limits(), model_name: str = "") -> None:
    """Serve until stopped (SIGINT, SIGTERM); one worker process, loopback by default."""
    import uvicorn

    uvicorn.run(build_app(segmenter, limits, model_name), host=host, port=port, workers=1,
                log_level="info", access_log=True, timeout_graceful_shutdown=5)
