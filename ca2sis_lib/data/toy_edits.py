"""Toy faces, part 3: the ideal result of every edit, computed from the scene parameters.

Because a toy image is ``render(layout, style)``, an edit of a real model can be compared with
its exact answer (render both with :func:`~ca2sis_lib.data.toy_render.render`):

* local style transfer of class c from B to A: ``render(A.layout, transfer_class_style(A.style, B.style, [c]))``
  — c gets B's intrinsic appearance, *under A's light*;
* global style transfer: ``render(A.layout, transfer_global_style(A.style, B.style))``;
* relighting: ``transfer_light(A.style, B.style)``;
* shape transfer of part c: ``render(transfer_part_shape(A.layout, B.layout, [c]), A.style)``;
* interpolation: :func:`interpolate_styles` and :func:`interpolate_layouts`.

Classes are given by index or by name ("hair").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

from ca2sis_lib.data.toy_scene import (
    CLASS_ID,
    Frame,
    Light,
    Part,
    ToyLayout,
    ToyStyle,
    lerp_class_style,
    part_from_image,
    part_in_image,
)


def class_ids(classes: Iterable[int | str]) -> set[int]:
    """Class names or indices -> a set of indices (raises on unknown names)."""
    out = set()
    for c in classes:
        if isinstance(c, str):
            if c not in CLASS_ID:
                raise ValueError(f"unknown toy class {c!r}; classes are {list(CLASS_ID)}")
            out.add(CLASS_ID[c])
        else:
            out.add(int(c))
    return out


def transfer_class_style(style_a: ToyStyle, style_b: ToyStyle, classes: Iterable[int | str]) -> ToyStyle:
    """A's style with the intrinsic appearance of ``classes`` taken from B; the light stays A's."""
    chosen = class_ids(classes)
    mixed = tuple(b if k in chosen else a for k, (a, b) in enumerate(zip(style_a.classes, style_b.classes)))
    return ToyStyle(classes=mixed, light=style_a.light)


def transfer_global_style(style_a: ToyStyle, style_b: ToyStyle) -> ToyStyle:
    """Everything from B (every class and the light): A's layout dressed and lit as B."""
    return ToyStyle(classes=style_b.classes, light=style_b.light)


def transfer_light(style_a: ToyStyle, style_b: ToyStyle) -> ToyStyle:
    """A's intrinsic appearance under B's light."""
    return ToyStyle(classes=style_a.classes, light=style_b.light)


def transfer_part_shape(layout_a: ToyLayout, layout_b: ToyLayout, classes: Iterable[int | str],
                        align: bool = True) -> ToyLayout:
    """A's layout with the parts of ``classes`` taken from B.

    Rule: every part of A whose class is in ``classes`` is removed, every part of B of those
    classes is added. With ``align`` (default) B's parts keep their head-frame coordinates, so B's
    nose lands on A's face where it sat on B's face; without it they keep their image position.
    Overlaps follow the toy world's painting order: parts are painted by ``depth``, a property of
    the part kind (back hair < neck < cloth < ears < face < nose < eyes, brows, mouth < fringe),
    so a transferred nose is painted over A's face, transferred back hair under it, and a
    transferred face under A's eyes. The label map of the result says which pixels each class won.
    """
    chosen = class_ids(classes)
    kept = [p for p in layout_a.parts if p.cls not in chosen]
    moved = [p for p in layout_b.parts if p.cls in chosen]
    if not align:
        moved = [_reframe(p, layout_b.frame, layout_a.frame) for p in moved]
    return ToyLayout(frame=layout_a.frame, parts=tuple(kept + moved))


def _reframe(part: Part, old: Frame, new: Frame) -> Part:
    """The same part at the same image position, expressed in another frame."""
    center, axes, angle = part_in_image(part, old)
    return part_from_image(part, center, axes, angle, new)


def interpolate_styles(style_a: ToyStyle, style_b: ToyStyle, t: float,
                       classes: Iterable[int | str] | None = None) -> ToyStyle:
    """Blend styles (t = 0 gives A, t = 1 gives B); only ``classes`` if given, else all classes and the light."""
    chosen = set(range(len(style_a.classes))) if classes is None else class_ids(classes)
    mixed = tuple(lerp_class_style(a, b, t) if k in chosen else a
                  for k, (a, b) in enumerate(zip(style_a.classes, style_b.classes)))
    light = style_a.light
    if classes is None:
        la, lb = style_a.light, style_b.light
        light = Light(direction=_lerp_angle(la.direction, lb.direction, t, period=2 * math.pi),
                      strength=(1 - t) * la.strength + t * lb.strength,
                      cast=tuple((1 - t) * x + t * y for x, y in zip(la.cast, lb.cast)))
    return ToyStyle(classes=mixed, light=light)


def _lerp_angle(a: float, b: float, t: float, period: float) -> float:
    turn = (b - a + period / 2) % period - period / 2  # the short way round
    return a + t * turn


def interpolate_layouts(layout_a: ToyLayout, layout_b: ToyLayout, t: float) -> ToyLayout:
    """Blend layouts: the frame and every part that both have (same name) move linearly from A to B.

    A part only A has shrinks to nothing as t goes to 1 (its axes scale by 1 - t); a part only B
    has grows from nothing (axes scale by t). So a fringe fades in, ears fade out, and t = 0 / 1
    give A / B exactly (as label maps).
    """
    fa, fb = layout_a.frame, layout_b.frame
    mix = lambda x, y: (1 - t) * x + t * y
    frame = Frame(cx=mix(fa.cx, fb.cx), cy=mix(fa.cy, fb.cy), scale=mix(fa.scale, fb.scale),
                  tilt=mix(fa.tilt, fb.tilt))
    by_name_b = {p.name: p for p in layout_b.parts}
    names_a = {p.name for p in layout_a.parts}
    parts = []
    for pa in layout_a.parts:
        pb = by_name_b.get(pa.name)
        if pb is None:
            parts.append(dataclasses.replace(pa, axes=(pa.axes[0] * (1 - t), pa.axes[1] * (1 - t))))
        else:
            parts.append(dataclasses.replace(
                pa, center=(mix(pa.center[0], pb.center[0]), mix(pa.center[1], pb.center[1])),
                axes=(mix(pa.axes[0], pb.axes[0]), mix(pa.axes[1], pb.axes[1])), angle=mix(pa.angle, pb.angle),
                squareness=mix(pa.squareness, pb.squareness), bend=mix(pa.bend, pb.bend)))
    for pb in layout_b.parts:
        if pb.name not in names_a:
            parts.append(dataclasses.replace(pb, axes=(pb.axes[0] * t, pb.axes[1] * t)))
    return ToyLayout(frame=frame, parts=tuple(parts))
