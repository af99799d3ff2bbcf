"""The synthetic 3-D scene: textured planar surfaces moving in front of a stereo rig.

Geometry (rectified frame, metres): the left camera sits at the origin, the
right camera at ``(B, 0, 0)`` with ``f * B = fB``; both look along +Z with focal
length ``f`` and principal point ``(cx, cy)``. A point ``(X, Y, Z)`` appears at
``x_L = cx + f X / Z`` and ``x_R = x_L - fB / Z`` on the same row.

Each surface is a textured rectangle on a plane, turned by a yaw angle about
the vertical axis (0 = fronto-parallel, constant depth), whose centre moves
laterally (triangle waves in image coordinates) and in depth (a sinusoid in log
depth, bounded so every visible point stays within ``[z_near, z_far]``).
:func:`render` ray-casts every requested (rectified, continuous) position into
all surfaces with a depth buffer, so sub-pixel disparity and occlusion are
exact, and samples the surface texture bilinearly in log reflectance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter

from snnc.data.synth_config import SceneConfig


@dataclass(frozen=True, eq=False)
class Surface:
    """One textured rectangle and its trajectory."""

    half_w: float  # metres, along the plane's horizontal axis
    half_h: float  # metres
    slant: float  # yaw angle (rad); 0 = fronto-parallel
    log_z_mid: float  # depth of the centre: exp(log_z_mid + amp * sin(2 pi t / period + phase))
    log_z_amp: float
    z_period: float
    z_phase: float
    a_range: tuple[float, float]  # centre X/Z sweeps this interval (triangle wave)
    a_speed: float  # in X/Z units per second
    a_phase: float  # position in the sweep cycle at t = 0, in [0, 1)
    b_range: tuple[float, float]  # centre Y/Z
    b_speed: float
    b_phase: float
    log_texture: np.ndarray  # float32 (nv, nu) log reflectance over the rectangle
    texture_quads: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # the 2x2 neighbourhood of every texel in one row: one gather per bilinear sample
        tex = np.asarray(self.log_texture, dtype=np.float32)
        quads = np.stack([tex[:-1, :-1], tex[:-1, 1:], tex[1:, :-1], tex[1:, 1:]], axis=-1)
        object.__setattr__(self, "texture_quads", np.ascontiguousarray(quads.reshape(-1, 4)))

    def centre(self, t: float) -> tuple[float, float, float]:
        """World position ``(X0, Y0, Z0)`` of the rectangle centre at time ``t`` (s)."""
        z0 = math.exp(self.log_z_mid + self.log_z_amp * math.sin(2 * math.pi * t / self.z_period + self.z_phase))
        a = _sweep(self.a_range, self.a_speed, self.a_phase, t)
        b = _sweep(self.b_range, self.b_speed, self.b_phase, t)
        return a * z0, b * z0, z0

    def depth_bounds(self) -> tuple[float, float]:
        """Smallest and largest depth any point of the surface ever has."""
        extent = self.half_w * abs(math.sin(self.slant))
        return (math.exp(self.log_z_mid - self.log_z_amp) - extent, math.exp(self.log_z_mid + self.log_z_amp) + extent)


def _sweep(interval: tuple[float, float], speed: float, phase: float, t: float) -> float:
    """Triangle wave running back and forth over ``interval`` at ``speed`` units/s."""
    lo, hi = interval
    if hi <= lo or speed == 0:
        return lo + (hi - lo) * (1 - abs(2 * phase - 1))
    cyc = (phase + t * speed / (2 * (hi - lo))) % 1.0
    return lo + (hi - lo) * (1 - abs(2 * cyc - 1))


@dataclass(frozen=True, eq=False)
class Scene:
    """Stereo rig plus surfaces."""

    height: int
    width: int
    focal: float  # pixels
    cx: float
    cy: float
    baseline: float  # metres; focal * baseline = fB
    background_log: float  # log intensity where no surface is
    surfaces: tuple[Surface, ...]

    def camera_x(self, camera: int) -> float:
        """X position of camera 0 (left) or 1 (right)."""
        return 0.0 if camera == 0 else self.baseline


@dataclass(frozen=True)
class PixelGrid:
    """Rectified positions to render, as normalised rays, for an (H, W) pixel array.

    ``rx[y, x] = (x_rect - cx) / f`` and ``ry[y, x] = (y_rect - cy) / f`` for the
    rectified position of pixel ``(x, y)``; ``margin`` bounds ``|x_rect - x|`` and
    ``|y_rect - y|`` (rounded up), so a rectified box maps to a pixel box.
    """

    rx: np.ndarray
    ry: np.ndarray
    margin: int


def pixel_grid(scene: Scene, x_rect: np.ndarray | None = None, y_rect: np.ndarray | None = None) -> PixelGrid:
    """Grid from rectification maps (raw pixels), or the identity (rectified pixels)."""
    ys, xs = np.mgrid[0 : scene.height, 0 : scene.width].astype(np.float32)
    if x_rect is None or y_rect is None:
        x_rect, y_rect = xs, ys
    x_rect = np.asarray(x_rect, dtype=np.float32)
    y_rect = np.asarray(y_rect, dtype=np.float32)
    margin = math.ceil(max(float(np.abs(x_rect - xs).max()), float(np.abs(y_rect - ys).max()))) + 1
    rx = ((x_rect - np.float32(scene.cx)) / np.float32(scene.focal)).astype(np.float32)
    ry = ((y_rect - np.float32(scene.cy)) / np.float32(scene.focal)).astype(np.float32)
    return PixelGrid(rx, ry, margin)


def render(
    scene: Scene, camera: int, t: float, grid: PixelGrid, want_depth: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Log intensity (float32, H x W) seen by ``camera`` at time ``t`` at the grid positions.

    With ``want_depth`` also returns the depth (metres, NaN where no surface).
    """
    h, w = grid.rx.shape
    log_img = np.full((h, w), scene.background_log, dtype=np.float32)
    zbuf = np.full((h, w), np.inf, dtype=np.float32)
    cam_x = scene.camera_x(camera)
    # nearest first: the depth test then skips the texture lookups of hidden pixels
    placed = sorted(((surf.centre(t), surf) for surf in scene.surfaces), key=lambda cs: cs[0][2])
    for centre, surf in placed:
        box = _pixel_box(scene, surf, centre, cam_x, grid.margin, h, w)
        if box is None:
            continue
        r0, r1, c0, c1 = box
        zsub = zbuf[r0:r1, c0:c1]
        found = _intersect(surf, centre, cam_x, grid.rx[r0:r1, c0:c1], grid.ry[r0:r1, c0:c1], zsub)
        if found is None:
            continue
        hit, z, u, v = found
        zsub[hit] = z
        log_img[r0:r1, c0:c1][hit] = _sample(surf, u, v)
    if not want_depth:
        return log_img, None
    depth = np.where(np.isfinite(zbuf), zbuf, np.float32(np.nan)).astype(np.float32)
    return log_img, depth


def _intersect(
    surf: Surface, centre: tuple[float, float, float], cam_x: float, rx: np.ndarray, ry: np.ndarray, zbuf: np.ndarray
) -> tuple[np.ndarray, np.ndarray | np.float32, np.ndarray, np.ndarray] | None:
    """Rays ``(rx, ry, 1)`` from ``(cam_x, 0, 0)`` that hit the surface in front of ``zbuf``.

    Returns ``(hit mask, depth, u, v)`` with depth and plane coordinates (metres)
    of the hit rays only, or None when no ray hits.
    """
    x0, y0, z0 = centre
    if surf.slant == 0.0:
        # fronto-parallel: the rectangle is a box in ray coordinates, all at depth z0
        inv_z = 1.0 / z0
        hit = rx >= np.float32((x0 - cam_x - surf.half_w) * inv_z)
        hit &= rx <= np.float32((x0 - cam_x + surf.half_w) * inv_z)
        hit &= ry >= np.float32((y0 - surf.half_h) * inv_z)
        hit &= ry <= np.float32((y0 + surf.half_h) * inv_z)
        hit &= zbuf > np.float32(z0)
        if not hit.any():
            return None
        u = rx[hit] * np.float32(z0) + np.float32(cam_x - x0)
        v = ry[hit] * np.float32(z0) - np.float32(y0)
        return hit, np.float32(z0), u, v
    sin_t, cos_t = math.sin(surf.slant), math.cos(surf.slant)
    # ray C + s * (rx, ry, 1) meets the plane n . (P - P0) = 0 with n = (-sin, 0, cos);
    # the depth of the hit point is s, its plane coordinates u (along (cos, 0, sin)) and v (along Y)
    n_dot_p = -sin_t * (x0 - cam_x) + cos_t * z0
    s = np.float32(n_dot_p) / (np.float32(cos_t) - np.float32(sin_t) * rx)
    u = (s * rx + np.float32(cam_x - x0)) * np.float32(cos_t) + (s - np.float32(z0)) * np.float32(sin_t)
    v = s * ry - np.float32(y0)
    hit = np.abs(u) <= np.float32(surf.half_w)
    hit &= np.abs(v) <= np.float32(surf.half_h)
    hit &= s > 0
    hit &= s < zbuf
    if not hit.any():
        return None
    return hit, s[hit], u[hit], v[hit]


def _pixel_box(
    scene: Scene, surf: Surface, centre: tuple[float, float, float], cam_x: float, margin: int, h: int, w: int
) -> tuple[int, int, int, int] | None:
    """Pixel rows/cols ``(r0, r1, c0, c1)`` that may see the surface, or None."""
    x0, y0, z0 = centre
    ux, uz = surf.half_w * math.cos(surf.slant), surf.half_w * math.sin(surf.slant)
    xs, ys = [], []
    for su in (-1.0, 1.0):
        for sv in (-1.0, 1.0):
            z = z0 + su * uz
            xs.append(scene.cx + scene.focal * (x0 + su * ux - cam_x) / z)
            ys.append(scene.cy + scene.focal * (y0 + sv * surf.half_h) / z)
    c0 = max(0, math.floor(min(xs)) - margin)
    c1 = min(w, math.ceil(max(xs)) + margin + 1)
    r0 = max(0, math.floor(min(ys)) - margin)
    r1 = min(h, math.ceil(max(ys)) + margin + 1)
    if c0 >= c1 or r0 >= r1:
        return None
    return r0, r1, c0, c1


def _sample(surf: Surface, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear sample of the surface's log texture at plane coordinates ``u, v`` (metres)."""
    nv, nu = surf.log_texture.shape
    tu = u * np.float32(nu / (2 * surf.half_w)) + np.float32(nu / 2 - 0.5)
    tv = v * np.float32(nv / (2 * surf.half_h)) + np.float32(nv / 2 - 0.5)
    np.maximum(tu, 0, out=tu)
    np.minimum(tu, np.float32(nu - 1.001), out=tu)  # keeps the integer part <= nu - 2
    np.maximum(tv, 0, out=tv)
    np.minimum(tv, np.float32(nv - 1.001), out=tv)
    iu = tu.astype(np.int32)
    iv = tv.astype(np.int32)
    tu -= iu
    tv -= iv
    quad = np.take(surf.texture_quads, iv * np.int32(nu - 1) + iu, axis=0)
    q00, q01, q10, q11 = quad.T
    top = q00 + tu * (q01 - q00)
    bot = q10 + tu * (q11 - q10)
    return top + tv * (bot - top)


# ---------------------------------------------------------------------------- building


def make_scene(config: SceneConfig, height: int, width: int, rng: np.random.Generator) -> Scene:
    """Draw a scene (surfaces, trajectories, textures) for an image of ``height x width``."""
    focal = config.focal_px_346 * width / 346.0
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    half_fov_x, half_fov_y = (width / 2.0) / focal, (height / 2.0) / focal
    scale = width / 346.0 / focal  # px/s at full width -> X/Z units per second
    n = config.n_surfaces
    n_slanted = round(config.slanted_fraction * n)
    slanted = np.zeros(n, dtype=bool)
    slanted[rng.permutation(n)[:n_slanted]] = True
    # stratified centre depths so near and far surfaces both occur
    log_near, log_far = math.log(config.z_near), math.log(config.z_far)
    strata = rng.permutation(n)
    surfaces: list[Surface] = []
    for i in range(n):
        ang_w = rng.uniform(*config.angular_width)
        ang_h = rng.uniform(*config.angular_height)
        slant = math.radians(rng.uniform(-config.max_slant_deg, config.max_slant_deg)) if slanted[i] else 0.0
        log_mid = log_near + (strata[i] + rng.uniform()) / max(n, 1) * (log_far - log_near)
        z_mid = math.exp(log_mid)
        half_w, half_h = 0.5 * ang_w * z_mid, 0.5 * ang_h * z_mid
        # keep every point within [z_near, z_far], with a tiny safety margin
        extent = half_w * abs(math.sin(slant))
        lo = math.log(config.z_near + extent) + 1e-4
        hi = math.log(max(config.z_far - extent, config.z_near + extent + 1e-3)) - 1e-4
        if hi <= lo:  # slanted surface too big for the range: make it fronto-parallel
            slant, extent = 0.0, 0.0
            lo, hi = log_near + 1e-4, log_far - 1e-4
        log_mid = min(max(log_mid, lo), hi)
        amp = min(rng.uniform(*config.depth_log_amplitude), log_mid - lo, hi - log_mid)
        a_half = half_fov_x * 0.9
        b_half = half_fov_y * 0.8
        surf_rng_tex = np.random.default_rng(rng.integers(0, 2**63))
        z_min_s = math.exp(log_mid - amp) - extent
        z_max_s = math.exp(log_mid + amp) + extent
        surfaces.append(
            Surface(
                half_w=half_w,
                half_h=half_h,
                slant=slant,
                log_z_mid=log_mid,
                log_z_amp=amp,
                z_period=rng.uniform(*config.depth_period_s),
                z_phase=rng.uniform(0, 2 * math.pi),
                a_range=(-a_half, a_half),
                a_speed=rng.uniform(*config.speed_x_px_s) * scale,
                a_phase=rng.uniform(),
                b_range=(-b_half, b_half),
                b_speed=rng.uniform(*config.speed_y_px_s) * scale,
                b_phase=rng.uniform(),
                log_texture=make_texture(half_w, half_h, z_min_s / focal, z_max_s / focal, surf_rng_tex),
            )
        )
    return Scene(
        height=height,
        width=width,
        focal=focal,
        cx=cx,
        cy=cy,
        baseline=config.fb / focal,
        background_log=math.log(config.background_reflectance),
        surfaces=tuple(surfaces),
    )


def make_texture(
    half_w: float, half_h: float, footprint_near: float, footprint_far: float, rng: np.random.Generator
) -> np.ndarray:
    """Log reflectance of a ``2 half_w x 2 half_h`` m rectangle: multi-scale blobs plus sharp shapes.

    ``footprint_near/far`` are the sizes (m) of one pixel on the surface at its
    nearest and farthest depth: texels are half the nearest footprint, and the
    finest blob scale is about one farthest footprint, so the texture has
    structure at every depth without heavy aliasing.
    """
    texel = 0.5 * footprint_near
    nu = max(4, math.ceil(2 * half_w / texel))
    nv = max(4, math.ceil(2 * half_h / texel))
    texel_u, texel_v = 2 * half_w / nu, 2 * half_h / nv
    texel = 0.5 * (texel_u + texel_v)
    sigma0 = 0.7 * footprint_far / texel  # finest blob scale in texels
    log_r = np.full((nv, nu), math.log(0.3), dtype=np.float64)
    for level, weight in enumerate((0.06, 0.08, 0.1, 0.12)):
        sigma = sigma0 * 2**level
        blobs = gaussian_filter(rng.standard_normal((nv, nu)), sigma, mode="wrap")
        std = float(blobs.std())
        if std > 0:
            log_r += weight * blobs / std
    shapes = np.zeros((nv, nu), dtype=np.float64)
    vv, uu = np.mgrid[0:nv, 0:nu].astype(np.float64)
    n_shapes = int(rng.integers(12, 30))
    side = min(nu, nv)
    for _ in range(n_shapes):
        cu, cv = rng.uniform(0, nu), rng.uniform(0, nv)
        ru = rng.uniform(0.03, 0.18) * side + 2 * sigma0
        rv = rng.uniform(0.03, 0.18) * side + 2 * sigma0
        ang = rng.uniform(0, math.pi)
        r = max(ru, rv)
        c0, c1 = max(0, int(cu - r) - 1), min(nu, int(cu + r) + 2)
        r0, r1 = max(0, int(cv - r) - 1), min(nv, int(cv + r) + 2)
        if c0 >= c1 or r0 >= r1:
            continue
        du, dv = uu[r0:r1, c0:c1] - cu, vv[r0:r1, c0:c1] - cv
        pu = du * math.cos(ang) + dv * math.sin(ang)
        pv = -du * math.sin(ang) + dv * math.cos(ang)
        if rng.uniform() < 0.5:
            inside = (np.abs(pu) <= ru) & (np.abs(pv) <= rv)
        else:
            inside = (pu / ru) ** 2 + (pv / rv) ** 2 <= 1.0
        shapes[r0:r1, c0:c1][inside] = rng.choice((-1.0, 1.0)) * rng.uniform(0.3, 0.7)
    # edges a little soft, like optics (about a third of a pixel at the farthest depth)
    log_r += gaussian_filter(shapes, 0.35 * footprint_far / texel)
    return np.clip(log_r, math.log(0.04), 0.0).astype(np.float32)
