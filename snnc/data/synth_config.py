"""Every knob of the synthetic MVSEC recording generator, in one frozen record.

:class:`SceneConfig` gathers the scene (surfaces, depths, speeds), the stereo
rig (focal length; ``f*B`` itself is fixed to MVSEC's indoor_flying value), the
lens distortion of the two raw cameras, the DVS pixel model and the sensor
clocks. The defaults reproduce an indoor_flying-like recording; tests pass
variations (e.g. no slanted surfaces) through :func:`snnc.data.synth.synthesize`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snnc.data import layout
from snnc.errors import SnncError

#: Focal length (pixels) of the DAVIS 346 cameras of MVSEC at full width.
FOCAL_PX_346: float = 226.38


@dataclass(frozen=True)
class LensSpec:
    """Radial distortion of one raw camera, described in pixels.

    The rectified position of raw pixel ``p`` is
    ``p + (p - c) * (max_displacement_px / R) * (|p - c| / R)**2 + shift_px``
    where ``c`` is the image centre moved by ``centre_offset_px`` and ``R`` the
    half-diagonal of the image: a corner moves by about ``max_displacement_px``.
    """

    max_displacement_px: float
    centre_offset_px: tuple[float, float] = (0.0, 0.0)
    shift_px: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class SceneConfig:
    """Scene, rig, pixel and clock parameters of a synthetic recording.

    Lengths are metres, times seconds, image speeds pixels per second at the
    full DAVIS width of 346 columns (they scale with the image width, like the
    focal length, so a smaller image shows the same scene at a lower resolution;
    disparities in pixels do not scale because ``f*B`` is fixed).
    """

    # scene
    n_surfaces: int = 9
    z_near: float = 3.9  # nearest depth anywhere (scaled disparity 36)
    z_far: float = 17.0  # farthest depth anywhere (scaled disparity 8)
    angular_width: tuple[float, float] = (0.3, 0.7)  # surface width / depth
    angular_height: tuple[float, float] = (0.25, 0.6)  # surface height / depth
    slanted_fraction: float = 0.5  # share of surfaces turned about the vertical axis
    max_slant_deg: float = 35.0
    speed_x_px_s: tuple[float, float] = (15.0, 60.0)  # lateral image speed
    speed_y_px_s: tuple[float, float] = (0.0, 20.0)  # vertical image speed
    depth_log_amplitude: tuple[float, float] = (0.08, 0.3)  # log-depth swing
    depth_period_s: tuple[float, float] = (4.0, 9.0)  # period of the depth swing
    background_reflectance: float = 0.25  # where no surface is
    # rig
    focal_px_346: float = FOCAL_PX_346
    fb: float = layout.FB_INDOOR_FLYING
    lens_left: LensSpec = field(default_factory=lambda: LensSpec(1.5, (0.9, -0.6), (0.0, 0.0)))
    lens_right: LensSpec = field(default_factory=lambda: LensSpec(1.2, (-0.7, 0.5), (0.0, 0.35)))
    # DVS pixel
    contrast_threshold: float = 0.17
    threshold_sigma: float = 0.01  # per-pixel spread of the threshold
    noise_rate_hz: float = 0.1  # background events per pixel per second
    # clocks
    substep_s: float = 0.001  # log-intensity simulation step
    depth_rate_hz: float = 20.0
    aps_rate_hz: float = 30.0
    lead_s: float = 0.1  # recording start to first depth frame
    t0: float = 1506117900.0  # absolute (ROS epoch) start time

    def validate(self) -> None:
        """Raise :class:`SnncError` when a parameter is out of its meaningful range."""
        problems = []
        if self.n_surfaces < 0:
            problems.append("n_surfaces must be >= 0")
        if not 0 < self.z_near < self.z_far:
            problems.append("need 0 < z_near < z_far")
        for name in (
            "angular_width",
            "angular_height",
            "speed_x_px_s",
            "speed_y_px_s",
            "depth_log_amplitude",
            "depth_period_s",
        ):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                problems.append(f"{name} must be an increasing pair of non-negative numbers")
        if self.angular_width[0] <= 0 or self.angular_height[0] <= 0 or self.depth_period_s[0] <= 0:
            problems.append("surface sizes and depth periods must be positive")
        if not 0 <= self.slanted_fraction <= 1 or not 0 <= self.max_slant_deg < 60:
            problems.append("slanted_fraction must be in [0, 1] and max_slant_deg in [0, 60)")
        if not 0 < self.background_reflectance <= 1:
            problems.append("background_reflectance must be in (0, 1]")
        if self.contrast_threshold <= 0.02 or self.threshold_sigma < 0:
            problems.append("contrast_threshold must be > 0.02 and threshold_sigma >= 0")
        if self.noise_rate_hz < 0:
            problems.append("noise_rate_hz must be >= 0")
        if not 1e-5 <= self.substep_s <= 0.01:
            problems.append("substep_s must be in [10 us, 10 ms]")
        if self.depth_rate_hz <= 0 or self.aps_rate_hz <= 0:
            problems.append("depth_rate_hz and aps_rate_hz must be positive")
        if self.lead_s < 1.0 / self.depth_rate_hz:
            problems.append("lead_s must be at least one depth period (a full event window)")
        if self.focal_px_346 <= 0 or self.fb <= 0:
            problems.append("focal_px_346 and fb must be positive")
        if problems:
            raise SnncError("invalid SceneConfig: " + "; ".join(problems))
