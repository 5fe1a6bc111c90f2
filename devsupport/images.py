"""Synthetic pictures for tests and benchmarks: random shapes and gradients, never real people.

Each seed gives one picture, the same every time; different seeds give unrelated pictures. The
variants are what an offender's re-sharing does to a bait photo: re-encoding, resizing, cropping.
"""

from __future__ import annotations

import io

import numpy
from PIL import Image, ImageDraw


def synthetic_picture(seed: int, width: int = 640, height: int = 480) -> Image.Image:
    rng = numpy.random.default_rng(seed)
    # A smooth random field (a coarse random grid blown up) with random shapes over it: like a photo,
    # it has structure at several scales, which is what perceptual hashes see.
    coarse = (rng.random((6, 8, 3)) * 255).astype(numpy.uint8)
    picture = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(picture)
    scale = min(width, height)
    for _ in range(12):
        x, y = rng.integers(0, width), rng.integers(0, height)
        extent = int(rng.integers(scale // 12, scale // 3))
        colour = tuple(int(value) for value in rng.integers(0, 256, 3))
        box = [x - extent, y - extent, x + extent, y + extent]
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    return picture


def encoded(picture: Image.Image, kind: str = "JPEG", quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    if kind == "JPEG":
        picture.save(buffer, kind, quality=quality)
    else:
        picture.save(buffer, kind)
    return buffer.getvalue()


def half_size(picture: Image.Image) -> Image.Image:
    return picture.resize((picture.width // 2, picture.height // 2), Image.Resampling.LANCZOS)


def cropped(picture: Image.Image, fraction: float = 0.05) -> Image.Image:
    """Cut `fraction` of the width and height away, split between the edges."""
    dx, dy = round(picture.width * fraction / 2), round(picture.height * fraction / 2)
    return picture.crop((dx, dy, picture.width - dx, picture.height - dy))
