"""Procedural SimMotion-style triplets: (reference, positive, hard negative).

The paper's SimMotion-Synthetic set comes from a generative-video pipeline we cannot run; this
generator follows its design with real photographs (scikit-image's sample images) composited and
moved procedurally. In every triplet

* the **reference** moves an object (or the camera) with some motion over a scene;
* the **positive** has the same motion (trajectory, timing, deformation, same start pose) and one
  factor changed, which names the category:
  ``static_object`` (a non-moving object of the scene), ``dynamic_object`` (the identity of the
  moving object), ``dynamic_appearance`` (colour/texture of the moving object), ``scene_style``
  (palette, cartoon/edge/painterly filters, lighting) or ``viewpoint`` (mirror, zoom, rotation,
  perspective of the camera);
* the **hard negative** starts from the same first frame, with the same appearance, and moves
  differently (another motion family, or the same family in another direction).

Everything is deterministic for a seed. Frames are (T, S, S, 3) uint8 arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter, ImageOps

CATEGORIES = ("static_object", "dynamic_object", "dynamic_appearance", "scene_style", "viewpoint")
MOTION_FAMILIES = ("line", "circle", "spin", "zoom", "oscillate", "bounce", "zigzag", "squash", "pan", "pair")
OBJECT_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "immunohistochemistry", "colorwheel", "hubble_deep_field")
BACKGROUND_PHOTOS = ("brick", "grass", "gravel", "coffee", "astronaut", "rocket", "camera", "moon", "coins")
STYLES = ("posterize", "edges", "painterly", "lighting", "channel_swap", "invert")
VIEWPOINTS = ("mirror", "zoom", "rotate", "perspective")


# -- photographs ------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def _background(name: str, size: int, tint: np.ndarray) -> Image.Image:
    photo = _photo(name).astype(np.float32)
    if name in ("brick", "grass", "gravel", "camera", "moon", "coins"):  # grey: tint it
        photo = photo * tint[None, None, :]
    image = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8))
    return ImageOps.fit(image, (size, size), Image.BILINEAR)


def _sprite(name: str, size: int, crop_seed: int) -> Image.Image:
    """An elliptical cut-out (RGBA) of a photograph, ``size`` pixels across."""
    photo = _photo(name)
    rng = np.random.default_rng(crop_seed)
    height, width = photo.shape[:2]
    side = int(min(height, width) * rng.uniform(0.45, 0.7))
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    crop = Image.fromarray(photo[top:top + side, left:left + side]).resize((size, size), Image.BILINEAR)
    mask = Image.new("L", (size, size), 0)
    from PIL import ImageDraw

    ImageDraw.Draw(mask).ellipse((1, 1, size - 2, size - 2), fill=255)
    crop.putalpha(mask)
    return crop


def _recolour(sprite: Image.Image, hue_turn: float, texture: str | None) -> Image.Image:
    """Same shape, other colour (hue rotation) and optionally a texture overlay."""
    alpha = sprite.getchannel("A")
    hsv = np.asarray(sprite.convert("RGB").convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(int) + int(hue_turn * 255)) % 256
    hsv[..., 1] = np.maximum(hsv[..., 1], 110)
    rgb = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB")).astype(np.float32)
    if texture is not None:
        pattern = np.asarray(ImageOps.fit(Image.fromarray(_photo(texture)), sprite.size)).astype(np.float32)
        rgb = 0.55 * rgb + 0.45 * pattern
    result = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    result.putalpha(alpha)
    return result


# -- motion -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Motion:
    """A motion family with its parameters; ``pose(u)`` for normalised time u in [0, 1] gives the
    object's offset (pixels, from its start position), rotation (degrees), scale (x, y) and the
    camera's offset (pixels) and zoom."""

    family: str
    direction: float = 0.0  # radians
    amount: float = 0.3  # fraction of the frame size
    cycles: float = 1.0
    sign: float = 1.0

    def pose(self, u: float, size: int) -> dict[str, float]:
        d = self.amount * size
        cos, sin = math.cos(self.direction), math.sin(self.direction)
        pose = {"dx": 0.0, "dy": 0.0, "angle": 0.0, "sx": 1.0, "sy": 1.0, "cam_dx": 0.0, "cam_dy": 0.0, "cam_zoom": 1.0}
        if self.family == "line":
            pose.update(dx=d * cos * u, dy=d * sin * u)
        elif self.family == "circle":
            phase = 2 * math.pi * self.cycles * u * self.sign
            radius = d / 2
            pose.update(dx=radius * (math.cos(phase + self.direction) - cos), dy=radius * (math.sin(phase + self.direction) - sin))
        elif self.family == "spin":
            pose.update(angle=360.0 * self.cycles * u * self.sign)
        elif self.family == "zoom":
            pose.update(sx=1 + self.sign * 0.6 * self.amount * 2 * u, sy=1 + self.sign * 0.6 * self.amount * 2 * u)
        elif self.family == "oscillate":
            offset = d * 0.5 * math.sin(2 * math.pi * self.cycles * u)
            pose.update(dx=offset * cos, dy=offset * sin)
        elif self.family == "bounce":
            height = d * 0.6 * abs(math.sin(math.pi * self.cycles * u))
            pose.update(dx=self.sign * d * 0.5 * u, dy=-height)
        elif self.family == "zigzag":
            wave = 1.0 - 2.0 * abs((self.cycles * u) % 1.0 - 0.5)  # triangle 0 -> 1 -> 0, 0 at the start
            pose.update(dx=d * cos * u - d * 0.3 * sin * wave, dy=d * sin * u + d * 0.3 * cos * wave)
        elif self.family == "squash":
            wobble = 0.35 * self.sign * math.sin(2 * math.pi * self.cycles * u)  # sign: which axis stretches first
            pose.update(sx=1 + wobble, sy=1 - wobble)
        elif self.family == "pan":
            pose.update(cam_dx=d * 0.5 * cos * u, cam_dy=d * 0.5 * sin * u)
        elif self.family == "pair":
            pose.update(dx=d * cos * u * 0.8, dy=d * sin * u * 0.8)
        else:
            raise ValueError(f"unknown motion family {self.family!r}")
        return pose


def random_motion(rng: np.random.Generator, family: str | None = None) -> Motion:
    family = family or str(rng.choice(MOTION_FAMILIES))
    return Motion(
        family=family,
        direction=float(rng.uniform(0, 2 * math.pi)),
        amount=float(rng.uniform(0.25, 0.4)),
        cycles=float(rng.choice([1.0, 1.5, 2.0])),
        sign=float(rng.choice([-1.0, 1.0])),
    )


def contrasting_motion(rng: np.random.Generator, motion: Motion) -> Motion:
    """A clearly different motion from the same start frame: another family, or the same family
    reversed/turned by 90-180 degrees. ``pair`` (two objects) stays ``pair``, turned, so the first
    frame keeps both objects."""
    if motion.family != "pair" and rng.random() < 0.7:
        family = str(rng.choice([f for f in MOTION_FAMILIES if f not in (motion.family, "pair")]))
        return random_motion(rng, family)
    turn = float(rng.uniform(0.5, 1.0)) * math.pi
    return replace(motion, direction=motion.direction + turn, sign=-motion.sign)


# -- scenes and rendering -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """Everything about appearance: the frame, the moving object, an optional static object, and
    the whole-frame style and camera applied after compositing."""

    background: str
    tint: tuple[float, float, float]
    sprite_photo: str
    sprite_seed: int
    hue_turn: float = 0.0
    texture: str | None = None
    start: tuple[float, float] = (0.35, 0.5)  # fractions of the frame size
    static_photo: str | None = None
    static_seed: int = 0
    static_at: tuple[float, float] = (0.75, 0.25)
    style: str | None = None
    viewpoint: str | None = None
    extra: dict = field(default_factory=dict, hash=False, compare=False)


def _style(image: Image.Image, style: str | None) -> Image.Image:
    if style is None:
        return image
    if style == "posterize":
        return ImageOps.posterize(image, 2)
    if style == "edges":
        edges = ImageOps.invert(image.convert("L").filter(ImageFilter.FIND_EDGES)).convert("RGB")
        flat = ImageOps.posterize(image.filter(ImageFilter.MedianFilter(5)), 3)
        return Image.blend(flat, edges, 0.5)
    if style == "painterly":
        return image.filter(ImageFilter.ModeFilter(7)).filter(ImageFilter.SMOOTH_MORE)
    if style == "lighting":
        array = np.asarray(image).astype(np.float32) / 255.0
        lit = np.power(array, 1.8) * np.array([1.15, 0.95, 0.7])
        return Image.fromarray(np.clip(lit * 255, 0, 255).astype(np.uint8))
    if style == "channel_swap":
        return Image.fromarray(np.ascontiguousarray(np.asarray(image)[..., ::-1]))
    if style == "invert":
        return ImageOps.invert(image)
    raise ValueError(f"unknown style {style!r}")


def _viewpoint(image: Image.Image, viewpoint: str | None) -> Image.Image:
    if viewpoint is None:
        return image
    size = image.size[0]
    if viewpoint == "mirror":
        return ImageOps.mirror(image)
    if viewpoint == "zoom":
        margin = size // 8
        return image.crop((margin, margin, size - margin, size - margin)).resize((size, size), Image.BILINEAR)
    if viewpoint == "rotate":
        return image.rotate(90)
    if viewpoint == "perspective":
        k = size * 0.18
        quad = (k, 0, 0, size, size, size, size - k, 0)  # top edge pulled in: a camera tilted up
        return image.transform((size, size), Image.QUAD, quad, Image.BILINEAR)
    raise ValueError(f"unknown viewpoint {viewpoint!r}")


def render(scene: Scene, motion: Motion, num_frames: int, size: int) -> np.ndarray:
    """(num_frames, size, size, 3) uint8 frames of ``scene`` moving with ``motion``."""
    margin = size // 4  # camera motion moves a window over a larger canvas
    canvas_size = size + 2 * margin
    background = _background(scene.background, canvas_size, np.array(scene.tint))
    sprite_size = size // 4
    sprite = _recolour(_sprite(scene.sprite_photo, sprite_size, scene.sprite_seed), scene.hue_turn, scene.texture) \
        if (scene.hue_turn or scene.texture) else _sprite(scene.sprite_photo, sprite_size, scene.sprite_seed)
    if scene.static_photo:
        static = _sprite(scene.static_photo, int(sprite_size * 1.2), scene.static_seed)
        position = (margin + int(scene.static_at[0] * size) - static.size[0] // 2,
                    margin + int(scene.static_at[1] * size) - static.size[1] // 2)
        background.paste(static, position, static)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for index in range(num_frames):
        u = index / max(num_frames - 1, 1)
        pose = motion.pose(u, size)
        frame = background.copy()
        movers = [(1.0, 1.0)] if motion.family != "pair" else [(1.0, 1.0), (-1.0, -1.0)]
        for number, (fx, fy) in enumerate(movers):
            width = max(4, int(sprite_size * pose["sx"]))
            height = max(4, int(sprite_size * pose["sy"]))
            moved = sprite.resize((width, height), Image.BILINEAR)
            if pose["angle"]:
                moved = moved.rotate(pose["angle"], resample=Image.BILINEAR, expand=True)
            start_x = scene.start[0] if number == 0 else 1.0 - scene.start[0]
            start_y = scene.start[1] if number == 0 else 1.0 - scene.start[1]
            centre_x = margin + start_x * size + fx * pose["dx"]
            centre_y = margin + start_y * size + fy * pose["dy"]
            frame.paste(moved, (int(centre_x - moved.size[0] / 2), int(centre_y - moved.size[1] / 2)), moved)
        zoom = pose["cam_zoom"]
        window = size / zoom
        left = margin + pose["cam_dx"] + (size - window) / 2
        top = margin + pose["cam_dy"] + (size - window) / 2
        view = frame.crop((int(left), int(top), int(left + window), int(top + window))).resize((size, size), Image.BILINEAR)
        frames[index] = np.asarray(_viewpoint(_style(view, scene.style), scene.viewpoint))
    return frames


# -- triplets -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Triplet:
    """One SimMotion-style triplet; ``describe`` says what changed in the positive and negative."""

    category: str
    reference: tuple[Scene, Motion]
    positive: tuple[Scene, Motion]
    negative: tuple[Scene, Motion]
    describe: dict[str, str]


def random_scene(rng: np.random.Generator) -> Scene:
    return Scene(
        background=str(rng.choice(BACKGROUND_PHOTOS)),
        tint=tuple(float(v) for v in rng.uniform(0.55, 1.0, size=3)),
        sprite_photo=str(rng.choice(OBJECT_PHOTOS)),
        sprite_seed=int(rng.integers(0, 2**31)),
        start=(float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.35, 0.6))),
        static_photo=str(rng.choice(OBJECT_PHOTOS)),
        static_seed=int(rng.integers(0, 2**31)),
        static_at=(float(rng.choice([0.15, 0.85])), float(rng.choice([0.15, 0.85]))),
    )


_CHANGES: dict[str, Callable[[np.random.Generator, Scene], tuple[Scene, str]]] = {
    "static_object": lambda rng, s: (
        replace(s, static_photo=str(rng.choice([p for p in OBJECT_PHOTOS if p != s.static_photo])),
                static_seed=int(rng.integers(0, 2**31)), static_at=(1.0 - s.static_at[0], s.static_at[1])),
        "another static object elsewhere in the scene"),
    "dynamic_object": lambda rng, s: (
        replace(s, sprite_photo=str(rng.choice([p for p in OBJECT_PHOTOS if p != s.sprite_photo])),
                sprite_seed=int(rng.integers(0, 2**31))),
        "another moving object"),
    "dynamic_appearance": lambda rng, s: (
        replace(s, hue_turn=float(rng.uniform(0.3, 0.7)), texture=[None, "brick", "grass", "gravel"][int(rng.integers(0, 4))]),
        "the moving object recoloured/retextured"),
    "scene_style": lambda rng, s: ((lambda style: (replace(s, style=style), f"whole-frame style: {style}"))(
        str(rng.choice(STYLES)))),
    "viewpoint": lambda rng, s: ((lambda view: (replace(s, viewpoint=view), f"camera: {view}"))(
        str(rng.choice(VIEWPOINTS)))),
}


def make_triplet(rng: np.random.Generator, category: str) -> Triplet:
    """A random triplet of ``category`` (one of CATEGORIES)."""
    if category not in _CHANGES:
        raise ValueError(f"category must be one of {CATEGORIES}, got {category!r}")
    scene = random_scene(rng)
    motion = random_motion(rng)
    changed_scene, change = _CHANGES[category](rng, scene)
    negative_motion = contrasting_motion(rng, motion)
    return Triplet(
        category=category,
        reference=(scene, motion),
        positive=(changed_scene, motion),
        negative=(scene, negative_motion),
        describe={"positive": change, "reference_motion": motion.family, "negative_motion": negative_motion.family},
    )


def make_triplets(count: int, seed: int = 0, categories: tuple[str, ...] = CATEGORIES) -> list[Triplet]:
    """``count`` triplets, cycling through ``categories``; deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    return [make_triplet(rng, categories[index % len(categories)]) for index in range(count)]
