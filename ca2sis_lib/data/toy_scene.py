"""Toy faces, part 1: what a scene *is* — a layout (where the parts are) and a style (how they look).

Semantic image synthesis learns the map (label map, style) -> image. To study it with known answers
we generate scenes whose two ingredients are explicit and separate:

* a :class:`ToyLayout` is geometry only: a head frame (position, scale, tilt) and a list of
  :class:`Part` shapes (face, eyes, hair, ...), each tied to one class of :data:`TOY_CLASSES`;
* a :class:`ToyStyle` is appearance only: one :class:`ClassStyle` per class (base colour, accent
  colour, stripes and noise textures) plus one global :class:`Light` that shades every class alike.

Everything is sampled with an explicit ``np.random.Generator`` so a scene is a pure function of its
seed, and everything round-trips through JSON (``to_dict`` / ``from_dict``).

Coordinates: image coordinates are normalised to [0, 1] (x to the right, y *down*), so one scene
renders at any resolution. Head parts live in the head frame: origin at the face centre, unit =
``frame.scale`` (about the face half-width), rotated by ``frame.tilt``. Body parts (neck, cloth)
use the same origin and unit but do not tilt. "l_" and "r_" name the part on the image's left and
right side (smaller / larger x).
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

TOY_CLASSES: tuple[str, ...] = (
    "background", "skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "hair", "ears", "neck", "cloth",
)
# Colours for *drawing label maps* (not the rendered appearance). Classes shared with CelebAMask-HQ
# reuse that dataset's customary colours so the two kinds of figures read alike.
TOY_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (204, 0, 0), (76, 153, 0), (51, 51, 255), (204, 0, 204), (0, 255, 255),
    (255, 204, 204), (102, 204, 0), (0, 0, 204), (102, 51, 0), (255, 153, 51), (0, 204, 0),
)
CLASS_ID = {name: i for i, name in enumerate(TOY_CLASSES)}
# Class pairs that trade places under a horizontal flip.
TOY_LR_PAIRS: tuple[tuple[int, int], ...] = tuple((CLASS_ID[f"l_{p}"], CLASS_ID[f"r_{p}"]) for p in ("eye", "brow"))

Vec2 = tuple[float, float]
RGB = tuple[float, float, float]


class Uniforms:
    """Uniform numbers from one Generator, drawn 128 at a time.

    A scene needs a couple of hundred random numbers; one numpy call per number would cost more
    than rendering the scene. Consuming a pre-drawn block in order keeps every draw a pure
    function of the Generator's seed.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng, self.block, self.next = rng, [], 0

    def __call__(self, low: float = 0.0, high: float = 1.0) -> float:
        if self.next == len(self.block):
            self.block, self.next = self.rng.random(128).tolist(), 0
        x = self.block[self.next]
        self.next += 1
        return low + (high - low) * x

    def choice(self, weights: tuple[float, ...]) -> int:
        """Index k drawn with probability weights[k] / sum(weights)."""
        x, total = self(0.0, sum(weights)), 0.0
        for k, w in enumerate(weights):
            total += w
            if x < total:
                return k
        return len(weights) - 1


# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """The head frame: face centre (cx, cy) in image units, scale (face half-width), tilt (radians)."""

    cx: float
    cy: float
    scale: float
    tilt: float


@dataclass(frozen=True)
class Part:
    """One shape: a bent, squared ellipse ``G(u, v) < 1`` in its own rotated coordinates.

    With local coordinates (x, y) around ``center`` rotated by ``angle``: ``u = x / a`` and
    ``v = y / b - bend * u**2``, and ``G = (1 - k) (u^2 + v^2) + k (u^4 + v^4)`` with
    ``k = squareness``: k = 0 is an ellipse, k = 1 a rounded box (a superellipse of degree 4),
    in between a blend (only products, no powers: fast to evaluate). ``bend`` curves the shape
    into an arc (bend > 0 lowers both ends: an arched brow; bend < 0 a smile).
    Parts are painted in increasing ``depth`` (ties: list order), later parts cover earlier ones.
    ``attach`` is "head" (moves and tilts with the face) or "body" (moves, does not tilt).
    """

    name: str  # unique within a layout, e.g. "l_eye", "hair_back"
    cls: int  # index into TOY_CLASSES
    center: Vec2  # frame units
    axes: Vec2  # half-width a, half-height b, frame units
    angle: float = 0.0  # radians, relative to the frame
    squareness: float = 0.0
    bend: float = 0.0
    depth: float = 0.0
    attach: str = "head"


@dataclass(frozen=True)
class ToyLayout:
    """Geometry of a scene: a head frame and the parts (background is implicit: class 0 everywhere)."""

    frame: Frame
    parts: tuple[Part, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"frame": dataclasses.asdict(self.frame), "parts": [dataclasses.asdict(p) for p in self.parts]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToyLayout:
        parts = tuple(
            Part(**{**p, "center": tuple(p["center"]), "axes": tuple(p["axes"])}) for p in data["parts"]
        )
        return cls(frame=Frame(**data["frame"]), parts=parts)

    def part(self, name: str) -> Part | None:
        return next((p for p in self.parts if p.name == name), None)

    def classes_present(self) -> set[int]:
        """Classes that have at least one part (a part may still be hidden, or too small to hit a pixel)."""
        return {0} | {p.cls for p in self.parts}


def part_in_image(part: Part, frame: Frame) -> tuple[Vec2, Vec2, float]:
    """(center, axes, angle) of ``part`` in normalised image coordinates."""
    px, py = part.center
    if part.attach == "head":
        c, s = math.cos(frame.tilt), math.sin(frame.tilt)
        px, py = c * px - s * py, s * px + c * py
        angle = part.angle + frame.tilt
    else:
        angle = part.angle
    center = (frame.cx + frame.scale * px, frame.cy + frame.scale * py)
    axes = (frame.scale * part.axes[0], frame.scale * part.axes[1])
    return center, axes, angle


def part_from_image(part: Part, center: Vec2, axes: Vec2, angle: float, frame: Frame) -> Part:
    """Inverse of :func:`part_in_image`: express an image-space placement in ``frame`` (keeps name, class...)."""
    dx, dy = (center[0] - frame.cx) / frame.scale, (center[1] - frame.cy) / frame.scale
    if part.attach == "head":
        c, s = math.cos(frame.tilt), math.sin(frame.tilt)
        dx, dy = c * dx + s * dy, -s * dx + c * dy
        angle = angle - frame.tilt
    return dataclasses.replace(
        part, center=(dx, dy), axes=(axes[0] / frame.scale, axes[1] / frame.scale), angle=angle
    )


# Painting order of the toy world (a class property, stated once): back hair, neck, cloth, ears,
# face, nose, eyes / brows / mouth, then the fringe on top.
DEPTH = {"hair_back": 1.0, "hair_bun": 1.1, "neck": 2.0, "cloth": 3.0, "ears": 4.0, "face": 5.0,
         "nose": 6.0, "features": 7.0, "fringe": 8.0}
HAIR_STYLES = ("short", "long", "bob", "bun", "bald")


def sample_layout(rng: np.random.Generator) -> ToyLayout:
    """Draw a face layout: position, scale, tilt, part shapes, hair style, optional ears and fringe."""
    u = Uniforms(rng)
    frame = Frame(cx=u(0.38, 0.62), cy=u(0.33, 0.45), scale=u(0.16, 0.24), tilt=u(-0.3, 0.3))
    face_w, face_h = u(0.88, 1.05), u(1.15, 1.4)
    parts: list[Part] = []
    add = parts.append
    hair = CLASS_ID["hair"]  # hair_back, hair_bun and fringe are all hair

    # Hair behind the head (absent for "bald").
    style = HAIR_STYLES[u.choice((0.3, 0.25, 0.2, 0.15, 0.1))]
    if style in ("short", "bun"):
        add(Part("hair_back", hair, (0.0, u(-0.35, -0.2)), (face_w * u(1.08, 1.2), u(1.05, 1.25)),
                 squareness=u(0.0, 0.3), depth=DEPTH["hair_back"]))
    elif style == "long":
        add(Part("hair_back", hair, (0.0, u(0.3, 0.6)), (face_w * u(1.2, 1.45), u(1.7, 2.1)),
                 squareness=u(0.3, 0.8), depth=DEPTH["hair_back"]))
    elif style == "bob":
        add(Part("hair_back", hair, (0.0, u(-0.05, 0.1)), (face_w * u(1.2, 1.35), u(1.25, 1.4)),
                 squareness=u(0.6, 1.0), depth=DEPTH["hair_back"]))
    if style == "bun":
        r = u(0.3, 0.45)
        add(Part("hair_bun", hair, (u(-0.25, 0.25), -face_h * u(1.15, 1.3)), (r, r * u(0.85, 1.0)),
                 depth=DEPTH["hair_bun"]))

    # Body: the neck hides under the chin, the cloth starts at the shoulder line.
    shoulder = face_h + u(0.45, 0.7)
    neck_top = 0.6 * face_h
    add(Part("neck", CLASS_ID["neck"], (u(-0.05, 0.05), (neck_top + shoulder) / 2 + 0.05),
             (u(0.32, 0.45), (shoulder - neck_top) / 2 + 0.12), squareness=1.0, depth=DEPTH["neck"], attach="body"))
    cloth_b = u(0.8, 1.0)
    add(Part("cloth", CLASS_ID["cloth"], (u(-0.1, 0.1), shoulder + cloth_b - 0.05), (u(1.6, 2.3), cloth_b),
             squareness=u(0.3, 1.0), bend=u(0.0, 0.4), depth=DEPTH["cloth"], attach="body"))

    # Ears (optional, both or neither), partly behind the face.
    if u() < 0.75:
        ear_y, ear_a, ear_b = u(-0.05, 0.15), u(0.14, 0.22), u(0.24, 0.32)
        for side, name in ((-1, "l_ear"), (1, "r_ear")):
            add(Part(name, CLASS_ID["ears"], (side * (face_w + u(-0.02, 0.06)), ear_y + u(-0.03, 0.03)), (ear_a, ear_b),
                     angle=side * u(0.0, 0.25), depth=DEPTH["ears"]))

    add(Part("face", CLASS_ID["skin"], (0.0, 0.0), (face_w, face_h), squareness=u(0.0, 0.5), depth=DEPTH["face"]))
    add(Part("nose", CLASS_ID["nose"], (u(-0.03, 0.03), u(0.1, 0.25)), (u(0.08, 0.14), u(0.14, 0.26)),
             squareness=u(0.0, 0.7), depth=DEPTH["nose"]))

    # Eyes and brows: a shared placement with a little asymmetry.
    eye_y, eye_dx = u(-0.2, 0.0), u(0.32, 0.45)
    eye_a, eye_b = u(0.13, 0.2), u(0.07, 0.11)
    brow_y, brow_a, brow_b, brow_bend = eye_y - u(0.18, 0.28), u(0.16, 0.26), u(0.06, 0.1), u(0.0, 2.5)
    for side, eye, brow in ((-1, "l_eye", "l_brow"), (1, "r_eye", "r_brow")):
        add(Part(eye, CLASS_ID[eye], (side * eye_dx + u(-0.02, 0.02), eye_y + u(-0.02, 0.02)),
                 (eye_a * u(0.95, 1.05), eye_b * u(0.95, 1.05)), angle=side * u(-0.1, 0.15),
                 depth=DEPTH["features"]))
        add(Part(brow, CLASS_ID[brow], (side * eye_dx + u(-0.03, 0.03), brow_y + u(-0.02, 0.02)),
                 (brow_a, brow_b), angle=side * u(-0.15, 0.2), bend=brow_bend * u(0.9, 1.1), depth=DEPTH["features"]))
    add(Part("mouth", CLASS_ID["mouth"], (u(-0.04, 0.04), u(0.5, 0.68)), (u(0.22, 0.38), u(0.06, 0.12)),
             angle=u(-0.08, 0.08), bend=u(-1.5, 0.8), depth=DEPTH["features"]))

    # Fringe (optional, never on a bald head): an arc across the forehead, painted over the face.
    if style != "bald" and u() < 0.6:
        add(Part("fringe", hair, (u(-0.15, 0.15), -face_h * u(0.66, 0.78)), (face_w * u(0.7, 0.95), u(0.2, 0.35)),
                 angle=u(-0.25, 0.25), bend=u(0.5, 1.5), depth=DEPTH["fringe"]))
    return ToyLayout(frame=frame, parts=tuple(parts))


# --------------------------------------------------------------------------------------------
# Style
# --------------------------------------------------------------------------------------------
Wave = tuple[float, float, float]  # (relative frequency, turn in radians, phase in radians)
DEFAULT_WAVES: tuple[Wave, ...] = ((1.0, -0.4, 0.0), (1.3, 0.3, 2.0), (0.7, 0.7, 4.0))


@dataclass(frozen=True)
class ClassStyle:
    """Intrinsic appearance of one class: ``albedo = color + mix * (accent - color)``.

    ``mix = clip(stripes * s + noise * z, 0, 1)`` with two patterns in [0, 1], both functions of
    image coordinates (so every part of a class, e.g. back hair and fringe, shares one pattern):

    * stripes ``s = 0.5 + 0.5 sin(2 pi frequency * across + phase)`` run along ``orientation``;
    * noise ``z`` is the mean of a few sinusoids, ``waves`` = (relative frequency, turn away
      from the stripe direction, phase): an irregular, smooth, resolution-free mottling.

    Flat classes have ``stripes = noise = 0``. All fields are numbers, so two class styles blend
    continuously (:func:`lerp_class_style`).
    """

    color: RGB
    accent: RGB
    stripes: float = 0.0
    noise: float = 0.0
    frequency: float = 4.0  # cycles per image width
    orientation: float = 0.0  # radians, direction the stripes run (0: horizontal)
    phase: float = 0.0
    waves: tuple[Wave, ...] = DEFAULT_WAVES


@dataclass(frozen=True)
class Light:
    """Global illumination, the same for every class.

    ``shade(p) = 1 - strength * (1 - s) / 2`` with ``s`` in [-1, 1] the position of p along
    ``direction`` (radians; the light comes *from* that side, which stays at full brightness);
    the image is ``albedo * shade * cast`` with ``cast`` an RGB tint whose largest channel is 1.
    """

    direction: float
    strength: float
    cast: RGB


@dataclass(frozen=True)
class ToyStyle:
    """Appearance of a scene: one :class:`ClassStyle` per class of TOY_CLASSES and the global light."""

    classes: tuple[ClassStyle, ...]
    light: Light

    def to_dict(self) -> dict[str, Any]:
        return {"classes": [dataclasses.asdict(c) for c in self.classes], "light": dataclasses.asdict(self.light)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToyStyle:
        classes = tuple(
            ClassStyle(**{**c, "color": tuple(c["color"]), "accent": tuple(c["accent"]),
                          "waves": tuple(tuple(w) for w in c["waves"])})
            for c in data["classes"]
        )
        light = Light(**{**data["light"], "cast": tuple(data["light"]["cast"])})
        return cls(classes=classes, light=light)


@dataclass(frozen=True)
class ClassPrior:
    """How one class's style is drawn: HSV boxes (weight, lo, hi) and texture statistics."""

    colors: tuple[tuple[float, RGB, RGB], ...]
    stripes_p: float  # probability of a stripe texture
    noise_p: float  # probability of a noise texture
    amplitude: Vec2  # range of the texture amplitude
    frequency: Vec2  # cycles per image width
    orientation: Vec2 = (0.0, math.pi)
    accent: str = "shade"  # "shade": darker base colour; "free": another colour of the prior


_SKIN = ((1.0, (0.02, 0.2, 0.3), (0.1, 0.6, 0.95)),)
_HAIR = (
    (0.25, (0.0, 0.0, 0.05), (1.0, 0.3, 0.18)),  # black
    (0.25, (0.04, 0.45, 0.2), (0.1, 0.8, 0.5)),  # brown
    (0.2, (0.1, 0.35, 0.6), (0.15, 0.7, 0.92)),  # blond
    (0.1, (0.0, 0.6, 0.4), (0.05, 0.9, 0.75)),  # red
    (0.1, (0.0, 0.0, 0.5), (1.0, 0.1, 0.85)),  # grey
    (0.1, (0.0, 0.6, 0.5), (1.0, 1.0, 0.9)),  # dyed
)
_ANY = ((1.0, (0.0, 0.05, 0.2), (1.0, 0.9, 0.95)),)
CLASS_PRIORS: dict[str, ClassPrior] = {
    "background": ClassPrior(_ANY, 0.3, 0.5, (0.2, 0.7), (1.5, 6.0), accent="free"),
    "skin": ClassPrior(_SKIN, 0.0, 0.6, (0.05, 0.25), (2.0, 8.0)),
    "nose": ClassPrior(_SKIN, 0.0, 0.5, (0.05, 0.25), (2.0, 8.0)),
    "l_eye": ClassPrior(((0.5, (0.0, 0.0, 0.75), (1.0, 0.15, 0.98)), (0.5, (0.0, 0.3, 0.2), (1.0, 0.8, 0.7))),
                        0.0, 0.3, (0.1, 0.4), (6.0, 14.0)),
    "r_eye": ClassPrior(((0.5, (0.0, 0.0, 0.75), (1.0, 0.15, 0.98)), (0.5, (0.0, 0.3, 0.2), (1.0, 0.8, 0.7))),
                        0.0, 0.3, (0.1, 0.4), (6.0, 14.0)),
    "l_brow": ClassPrior(((1.0, (0.0, 0.1, 0.05), (0.12, 0.7, 0.45)),), 0.6, 0.0, (0.2, 0.5), (10.0, 16.0),
                         (-0.4, 0.4)),
    "r_brow": ClassPrior(((1.0, (0.0, 0.1, 0.05), (0.12, 0.7, 0.45)),), 0.6, 0.0, (0.2, 0.5), (10.0, 16.0),
                         (-0.4, 0.4)),
    "mouth": ClassPrior(((1.0, (0.93, 0.35, 0.35), (1.02, 0.8, 0.85)),), 0.0, 0.4, (0.1, 0.3), (4.0, 12.0)),
    "hair": ClassPrior(_HAIR, 0.7, 0.3, (0.2, 0.6), (8.0, 16.0), (math.pi / 2 - 0.5, math.pi / 2 + 0.5)),
    "ears": ClassPrior(_SKIN, 0.0, 0.5, (0.05, 0.25), (2.0, 8.0)),
    "neck": ClassPrior(_SKIN, 0.0, 0.5, (0.05, 0.25), (2.0, 8.0)),
    "cloth": ClassPrior(_ANY, 0.5, 0.3, (0.3, 0.8), (3.0, 12.0), accent="free"),
}
# Correlated classes: (class, partner). Applied in this order, so r_brow follows the hair-tied l_brow.
CORRELATIONS: tuple[tuple[str, str], ...] = (
    ("l_brow", "hair"), ("r_brow", "l_brow"), ("r_eye", "l_eye"), ("nose", "skin"), ("ears", "skin"), ("neck", "skin"),
)


def _sample_color(u: Uniforms, boxes: tuple[tuple[float, RGB, RGB], ...]) -> RGB:
    _, lo, hi = boxes[u.choice(tuple(w for w, _, _ in boxes))]
    h, s, v = (u(lo[k], hi[k]) for k in range(3))
    return colorsys.hsv_to_rgb(h % 1.0, s, v)


def sample_class_style(u: Uniforms, prior: ClassPrior) -> ClassStyle:
    """Draw one class's intrinsic appearance from its prior."""
    color = _sample_color(u, prior.colors)
    if prior.accent == "free":
        accent = _sample_color(u, prior.colors)
    else:
        shade = u(0.35, 0.75)
        accent = tuple(c * shade for c in color)
    kind, amplitude = u(), u(*prior.amplitude)
    stripes = amplitude if kind < prior.stripes_p else 0.0
    noise = amplitude if prior.stripes_p <= kind < prior.stripes_p + prior.noise_p else 0.0
    return ClassStyle(
        color=color, accent=accent, stripes=stripes, noise=noise, frequency=u(*prior.frequency),
        orientation=u(*prior.orientation), phase=u(0, 2 * math.pi),
        waves=tuple((u(0.6, 1.4), u(-0.8, 0.8), u(0, 2 * math.pi)) for _ in DEFAULT_WAVES),
    )


def sample_light(u: Uniforms) -> Light:
    """Draw the global light: any direction, strength in [0, 0.6], a mild colour cast."""
    cast = [u(0.78, 1.0) for _ in range(3)]
    top = max(cast)
    return Light(direction=u(0, 2 * math.pi), strength=u(0.0, 0.6), cast=tuple(c / top for c in cast))


def lerp_class_style(a: ClassStyle, b: ClassStyle, t: float) -> ClassStyle:
    """Blend two class styles (t = 0 gives a, t = 1 gives b): every number linearly, the stripe
    orientation the short way round (it is defined modulo pi)."""
    mix = lambda x, y: (1 - t) * x + t * y
    turn = (b.orientation - a.orientation + math.pi / 2) % math.pi - math.pi / 2
    return ClassStyle(
        color=tuple(mix(x, y) for x, y in zip(a.color, b.color)),
        accent=tuple(mix(x, y) for x, y in zip(a.accent, b.accent)),
        stripes=mix(a.stripes, b.stripes), noise=mix(a.noise, b.noise), frequency=mix(a.frequency, b.frequency),
        orientation=b.orientation if t == 1 else a.orientation + t * turn, phase=mix(a.phase, b.phase),
        waves=tuple(tuple(mix(x, y) for x, y in zip(wa, wb)) for wa, wb in zip(a.waves, b.waves)),
    )


def sample_style(rng: np.random.Generator, correlation: float = 0.0) -> ToyStyle:
    """Draw a style: every class independently from its prior, then the global light.

    ``correlation`` in [0, 1] ties related classes together (see CORRELATIONS): 0 keeps them
    independent (clean per-class ground truths), 1 copies the partner (brows take the hair's
    colour, darkened; the right eye copies the left; nose, ears and neck copy the skin).
    """
    if not 0.0 <= correlation <= 1.0:
        raise ValueError(f"correlation must be in [0, 1], got {correlation}")
    u = Uniforms(rng)
    styles = {name: sample_class_style(u, CLASS_PRIORS[name]) for name in TOY_CLASSES}
    light = sample_light(u)
    if correlation > 0:
        for name, partner in CORRELATIONS:
            target = styles[partner]
            if partner == "hair":  # brows are darker, thinner-textured hair
                target = dataclasses.replace(target, color=tuple(0.7 * c for c in target.color),
                                             accent=tuple(0.7 * c for c in target.accent))
            styles[name] = lerp_class_style(styles[name], target, correlation)
    return ToyStyle(classes=tuple(styles[name] for name in TOY_CLASSES), light=light)
