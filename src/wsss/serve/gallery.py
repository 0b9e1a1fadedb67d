"""The visual gallery: chosen images beside every stage's label map, as one self-contained HTML
page and as one picture (for MLflow). Pure: arrays in, HTML text / RGB arrays / PNG bytes out;
what reads the artifacts is the stage, wsss.stages.gallery.

Rows are chosen by `choose`: the worst and best images by the per-image IoU of the final pseudo
masks, and a sample drawn with a fixed seed from every image with a ground truth, so that two
experiments show the same sample.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from wsss.evaluation.visualize import colorize_mask, gallery, to_height

IGNORE = 255
_BAND = 18  # px of caption text under each panel of the picture


@dataclass(frozen=True)
class Panel:
    """One cell: a picture (RGB uint8, any size) and the text under it (e.g. its IoU)."""

    picture: np.ndarray
    caption: str = ""


@dataclass
class Row:
    """One image: its id, the groups that chose it ("worst 1", "sample", ...), and its panels by
    column title (a column an image lacks stays empty)."""

    image_id: str
    groups: list[str]
    panels: dict[str, Panel] = field(default_factory=dict)
    note: str = ""  # extra text for the row's caption


def choose(ids: Sequence[str], scores: Mapping[str, float | None] | None, worst: int, best: int, sample: int,
           seed: int) -> list[tuple[str, list[str]]]:
    """(image id, groups) of the rows: the `worst` lowest and `best` highest scores (ties by id),
    then `sample` ids drawn from `ids` by a generator seeded with `seed` (in `ids` order). An id
    chosen twice is one row with both groups. Without scores only the sample is drawn; ids whose
    score is None (no counted pixel) are not ranked."""
    groups: dict[str, list[str]] = {}
    if scores is not None:
        ranked = sorted((score, image_id) for image_id, score in scores.items() if score is not None)
        for rank, (_, image_id) in enumerate(ranked[:worst], 1):
            groups.setdefault(image_id, []).append(f"worst {rank}")
        for rank, (_, image_id) in enumerate(reversed(ranked[len(ranked) - min(best, len(ranked)):]), 1):
            groups.setdefault(image_id, []).append(f"best {rank}")
    count = min(sample, len(ids))
    if count:
        drawn = np.random.default_rng(seed).choice(len(ids), size=count, replace=False)
        for index in sorted(drawn.tolist()):
            groups.setdefault(ids[index], []).append("sample")
    return list(groups.items())


def iou_caption(iou: float | None) -> str:
    return "IoU -" if iou is None else f"IoU {iou:.3f}"


def mask_panel(mask: np.ndarray, caption: str = "") -> Panel:
    return Panel(colorize_mask(mask), caption)


def legend(class_names: Sequence[str]) -> list[tuple[str, tuple[int, int, int]]]:
    """(name, RGB) of every class and of the ignore label, in the VOC palette."""
    colours = colorize_mask(np.array([*range(len(class_names)), IGNORE], dtype=np.uint8))
    return [(name, tuple(int(c) for c in colour)) for name, colour in zip([*class_names, "ignore (255)"], colours)]


def png_bytes(picture: np.ndarray) -> bytes:
    """An RGB uint8 picture as PNG file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture, dtype=np.uint8), mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _data_uri(picture: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode("ascii")


_STYLE = """
body { font-family: sans-serif; margin: 1em; color: #222; }
table.meta td, table.meta th { text-align: left; padding: 0 1em 0 0; font-weight: normal; }
table.meta th { color: #666; }
.legend span { display: inline-block; margin: 0 1em 0.3em 0; white-space: nowrap; }
.legend i { display: inline-block; width: 1em; height: 1em; vertical-align: middle; margin-right: 0.3em;
            border: 1px solid #999; }
table.grid { border-collapse: collapse; margin-top: 1em; }
table.grid th, table.grid td { padding: 2px 4px; vertical-align: top; }
table.grid thead th { position: sticky; top: 0; background: #fff; }
tr.caption th { text-align: left; background: #eee; font-weight: normal; }
figure { margin: 0; text-align: center; }
figure img { display: block; max-width: 220px; height: auto; image-rendering: pixelated; }
figcaption { font-size: small; }
"""


def html_page(rows: Sequence[Row], columns: Sequence[str], class_names: Sequence[str],
              header: Mapping[str, str], notes: Sequence[str] = (), title: str = "wsss gallery") -> str:
    """The page: a header table, notes, the class legend and the grid (a caption row naming each
    row's groups and image id, then its panels with their captions). Every picture is an inline
    PNG data URI; no script, no external request."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(title)}</title>",
           f"<style>{_STYLE}</style></head><body>", f"<h1>{e(title)}</h1>", '<table class="meta">']
    out += [f"<tr><th>{e(key)}</th><td>{e(str(value))}</td></tr>" for key, value in header.items()]
    out.append("</table>")
    if notes:
        out.append('<ul class="notes">' + "".join(f"<li>{e(note)}</li>" for note in notes) + "</ul>")
    out.append('<div class="legend">' + "".join(
        f'<span><i style="background: rgb{colour}"></i>{e(name)}</span>' for name, colour in legend(class_names))
        + "</div>")
    out.append('<table class="grid"><thead><tr>' + "".join(f"<th>{e(c)}</th>" for c in columns) + "</tr></thead><tbody>")
    for row in rows:
        caption = " · ".join([", ".join(row.groups), row.image_id, *([row.note] if row.note else [])])
        out.append(f'<tr class="caption"><th colspan="{len(columns)}">{e(caption)}</th></tr><tr>')
        for column in columns:
            panel = row.panels.get(column)
            if panel is None:
                out.append("<td></td>")
                continue
            height, width = panel.picture.shape[:2]
            out.append(f'<td><figure><img src="{_data_uri(panel.picture)}" width="{width}" height="{height}" '
                       f'alt="{e(column)}: {e(row.image_id)}"><figcaption>{e(panel.caption)}</figcaption></figure></td>')
        out.append("</tr>")
    out.append("</tbody></table></body></html>")
    return "\n".join(out) + "\n"


def picture(rows: Sequence[Row], columns: Sequence[str], height: int = 160) -> np.ndarray:
    """The grid as one RGB picture, an overview: every panel scaled to `height` px (VOC-sized
    rows stay small; tiny images get room for their captions), the column title and caption
    written under it (the image's: its groups and id), an image's missing columns left white;
    rows joined by `wsss.evaluation.visualize.gallery`."""
    if not rows:
        raise ValueError("a gallery needs at least one row")
    lines = []
    for row in rows:
        reference = next(iter(row.panels.values())).picture
        cells = []
        for index, column in enumerate(columns):
            panel = row.panels.get(column)
            scaled = to_height(panel.picture if panel else np.full_like(reference, 255), height)
            text = f"{', '.join(row.groups)}: {row.image_id}" if index == 0 else f"{column} {panel.caption if panel else ''}"
            cells.append(np.concatenate([scaled, _text_band(text, scaled.shape[1])], axis=0))
        lines.append(cells)
    return gallery(lines)


def _text_band(text: str, width: int) -> np.ndarray:
    band = np.full((_BAND, width, 3), 255, dtype=np.uint8)
    cv2.putText(band, text, (2, _BAND - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return band
