"""Toy faces, part 2: turning (layout, style) into an image and an exact label map, with numpy.

The rasteriser is a painter: parts are painted in depth order onto the background. For each part
we evaluate its implicit function ``G`` (``G < 1`` inside, see :class:`Part`) at pixel centres:

* the **label** of a pixel is the class of the last part whose ``G < 1`` at the pixel centre —
  exact, no threshold to tune;
* the **image** uses an antialiased coverage ``clip(0.5 - d, 0, 1)`` where ``d = (G - 1) / |grad G|``
  is the first-order signed distance to the edge in pixels. Coverage is > 1/2 exactly where the
  pixel centre is inside, and a part never paints farther than one pixel from the pixels where
  it is *visible* in the label map (coverage is masked by the 3x3 dilation of those pixels), so
  an edit of one class changes only that class's pixels and a one-pixel rim around them.

Colours: ``image = albedo * light_field`` where the albedo is the painted per-class texture
(:func:`texture_albedo`) and :func:`light_field` the global illumination. Everything is float64
numpy with no threads, so results are identical on any machine and any thread count.
"""

from __future__ import annotations

import math

import numpy as np

from ca2sis_lib.data.toy_scene import ClassStyle, Light, Part, ToyLayout, ToyStyle, part_in_image


def pixel_centers(size: int) -> np.ndarray:
    """Normalised coordinates of pixel centres along one axis: (i + 0.5) / size, shape (size,)."""
    return (np.arange(size) + 0.5) / size


def light_field(light: Light, size: int) -> np.ndarray:
    """The global light as an RGB multiplier, shape (size, size, 3), values in [1 - strength, 1]."""
    p = 2 * pixel_centers(size) - 1  # [-1, 1]
    along = (np.cos(light.direction) * p[None, :] + np.sin(light.direction) * p[:, None]) / math.sqrt(2)
    shade = 1 - light.strength * (1 - np.clip(along, -1, 1)) / 2  # (H, W)
    return shade[..., None] * np.asarray(light.cast)  # (H, W, 3)


def _wave(x: np.ndarray, y: np.ndarray, kx: float, ky: float, phase: float) -> np.ndarray:
    """sin(kx * x + ky * y + phase) for a row x (1, w) and a column y (h, 1), shape (h, w).

    Written as sin(a)cos(b) + cos(a)sin(b) so the four sines run on 1-D vectors, not on every pixel.
    """
    ax, by = kx * x, ky * y + phase
    return np.sin(ax) * np.cos(by) + np.cos(ax) * np.sin(by)


def _across(frequency: float, direction: float) -> tuple[float, float]:
    """Wave vector (kx, ky) of a sinusoid with ``frequency`` cycles per unit that runs along ``direction``."""
    k = 2 * math.pi * frequency
    return -k * math.sin(direction), k * math.cos(direction)


def _albedo(style: ClassStyle, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Like :func:`texture_albedo`, but a flat class gives just its colour, shape (3,) (cheaper to composite)."""
    color = np.asarray(style.color)
    if style.stripes == 0 and style.noise == 0:
        return color
    mix = np.zeros((np.shape(y)[0], np.shape(x)[-1]))  # (h, w)
    if style.stripes:
        mix += (0.5 * style.stripes) * (1 + _wave(x, y, *_across(style.frequency, style.orientation), style.phase))
    if style.noise:
        for scale, turn, phase in style.waves:
            wave = _wave(x, y, *_across(style.frequency * scale, style.orientation + turn), phase)
            mix += (0.5 * style.noise / len(style.waves)) * (1 + wave)
    np.minimum(mix, 1.0, out=mix)  # (mix >= 0 already)
    return color + mix[..., None] * (np.asarray(style.accent) - color)  # (h, w, 3)


def texture_albedo(style: ClassStyle, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Albedo of one class at normalised image coordinates: a row x (1, w) and a column y (h, 1) -> (h, w, 3).

    The albedo is ``color + clip(stripes * s + noise * z, 0, 1) * (accent - color)``, see
    :class:`~ca2sis_lib.data.toy_scene.ClassStyle`; the same picture at every resolution.
    """
    albedo = _albedo(style, x, y)
    return np.broadcast_to(albedo, (np.shape(y)[0], np.shape(x)[-1], 3))


def _part_box(center: tuple[float, float], axes: tuple[float, float], angle: float, bend: float,
              size: int) -> tuple[int, int, int, int] | None:
    """Pixel rows/cols [y0, y1) x [x0, x1) that can see the part, with a 2-pixel margin; None if off-image."""
    a, b = axes[0], axes[1] * (1 + abs(bend))
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    ex, ey = c * a + s * b, s * a + c * b
    margin = 2 / size
    x0, x1 = math.floor((center[0] - ex - margin) * size), math.ceil((center[0] + ex + margin) * size)
    y0, y1 = math.floor((center[1] - ey - margin) * size), math.ceil((center[1] + ey + margin) * size)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size), min(y1, size)
    if x0 >= x1 or y0 >= y1:
        return None
    return y0, y1, x0, x1


def _dilate3(mask: np.ndarray) -> np.ndarray:
    """3x3 binary dilation (separable: rows, then columns)."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    rows = out.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out


def rasterize_part(part: Part, layout: ToyLayout, size: int, coverage: bool = True,
                   ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray | None] | None:
    """Evaluate one part on its pixel box, ignoring all other parts.

    Returns ``(box, inside, cov)`` with ``box = (y0, y1, x0, x1)``, ``inside`` (h, w) bool (pixel
    centre inside the shape) and ``cov`` (h, w) antialiased coverage in [0, 1] (None when
    ``coverage`` is False); or None when the part misses the image.
    """
    center, axes, angle = part_in_image(part, layout.frame)
    box = _part_box(center, axes, angle, part.bend, size)
    if box is None or min(axes) <= 0:
        return None
    y0, y1, x0, x1 = box
    # Pixel units from here on, so distances come out in pixels.
    cx, cy, a, b = center[0] * size, center[1] * size, axes[0] * size, axes[1] * size
    dx = np.arange(x0, x1) + (0.5 - cx)  # (w,)
    dy = (np.arange(y0, y1) + (0.5 - cy))[:, None]  # (h, 1)
    c, s = math.cos(angle), math.sin(angle)
    u = dx * (c / a) + dy * (s / a)  # (h, w): rotate, then scale the axes to 1
    v = dy * (c / b) - dx * (s / b)
    if part.bend:
        v -= part.bend * (u * u)
    k = part.squareness
    u2, v2 = u * u, v * v
    G = u2 + v2  # the ellipse; inside where G < 1
    Gu, Gv = 2 * u, 2 * v  # dG/du, dG/dv
    if k:
        G += k * (u2 * u2 + v2 * v2 - G)  # (1 - k) (u^2 + v^2) + k (u^4 + v^4)
        Gu = u * (2 * (1 - k) + (4 * k) * u2)
        Gv = v * (2 * (1 - k) + (4 * k) * v2)
    inside = G < 1
    if not coverage:
        return box, inside, None
    # First-order signed distance to the edge G = 1, in pixels: d = (G - 1) / |grad G|, where
    # grad G = ((Gu - 2 bend u Gv) / a, Gv / b) by the chain rule through u = x/a, v = y/b - bend u^2.
    if part.bend:
        Gu = Gu - (2 * part.bend) * u * Gv
    norm = np.hypot(Gu * (1 / a), Gv * (1 / b))
    dist = np.subtract(G, 1.0)
    dist /= np.maximum(norm, 1e-300)  # < 0 inside; at the exact centre (norm = 0) about -1e300
    cov = np.subtract(0.5, dist, out=dist)
    np.minimum(cov, 1.0, out=cov)
    np.maximum(cov, 0.0, out=cov)
    return box, inside, cov


def painting_order(layout: ToyLayout) -> list[int]:
    """Indices of ``layout.parts`` in painting order: increasing depth, ties in list order."""
    return sorted(range(len(layout.parts)), key=lambda k: (layout.parts[k].depth, k))


def part_index_map(layout: ToyLayout, size: int) -> np.ndarray:
    """Which part each pixel shows: index into ``layout.parts``, -1 for background, shape (size, size)."""
    return _rasterize_all(layout, size, coverage=False)[0]


def _rasterize_all(layout: ToyLayout, size: int, coverage: bool = True) -> tuple[np.ndarray, list]:
    """Paint part indices in depth order: ``(index map (size, size), [(k, box, inside, cov), ...])``."""
    index = np.full((size, size), -1, dtype=np.int64)
    hits = []
    for k in painting_order(layout):
        hit = rasterize_part(layout.parts[k], layout, size, coverage)
        if hit is not None:
            (y0, y1, x0, x1), inside, cov = hit
            index[y0:y1, x0:x1][inside] = k
            hits.append((k, hit[0], inside, cov))
    return index, hits


def _classes_of(layout: ToyLayout, index: np.ndarray) -> np.ndarray:
    """Part index map -> class label map (int64)."""
    return np.array([0] + [p.cls for p in layout.parts], dtype=np.int64)[index + 1]


def label_map(layout: ToyLayout, size: int) -> np.ndarray:
    """The exact label map of a layout: int64 class ids, shape (size, size)."""
    return _classes_of(layout, part_index_map(layout, size))


def render_albedo(layout: ToyLayout, style: ToyStyle, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Paint the parts: ``(albedo (size, size, 3) float64 in [0, 1], labels (size, size) int64)``.

    Two passes: first the exact part index map (who is visible where), then "over" compositing
    in depth order, where every layer — the background included — only counts within one pixel
    of where it is *visible*, and the colours are renormalised by the total weight. So a part
    hidden under an occluder cannot shine through the occluder's antialiased edge, which is what
    makes edits local: a class's style reaches only its own pixels and a one-pixel rim.
    """
    index, hits = _rasterize_all(layout, size)
    xs = pixel_centers(size)
    alpha = _dilate3(index == -1).astype(np.float64)  # (size, size): weight of what is painted so far
    albedo = texture_albedo(style.classes[0], xs[None, :], xs[:, None]) * alpha[..., None]  # premultiplied
    for k, (y0, y1, x0, x1), _, cov in hits:
        cov *= _dilate3(index[y0:y1, x0:x1] == k)
        if not cov.any():
            continue  # a hidden part
        part = layout.parts[k]
        color = _albedo(style.classes[part.cls], xs[None, x0:x1], xs[y0:y1, None])  # (h, w, 3) or (3,)
        region, weight = albedo[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
        region += cov[..., None] * (color - region)  # "over", in place: cov * color + (1 - cov) * below
        weight += cov * (1 - weight)
    albedo /= alpha[..., None]  # alpha >= 1/2 everywhere: the visible part covers its own pixel centre
    return albedo, _classes_of(layout, index)


def render_sample(layout: ToyLayout, style: ToyStyle, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Image and label map in one pass: ``(image (size, size, 3) float32 in [0, 1], labels (size, size) int64)``."""
    albedo, labels = render_albedo(layout, style, size)
    image = albedo * light_field(style.light, size)
    return image.astype(np.float32), labels


def render(layout: ToyLayout, style: ToyStyle, size: int) -> np.ndarray:
    """The image of a scene, float32 (size, size, 3) in [0, 1]."""
    return render_sample(layout, style, size)[0]
