"""DVS pixel model: events from threshold crossings of log intensity.

The dynamics are a pure step function ``dvs_step(log_next, t_next_us, state,
params) -> (events, state)`` with explicit state ``(log_prev, reference,
t_prev_us)``. Between two simulation substeps the log intensity of a pixel is
taken to move linearly; every crossing of ``reference + k * C`` (``k = 1, 2,
...``) emits one event whose time is interpolated within the substep, and the
reference moves by ``C`` per event. Thresholds ``C`` are per pixel and per
polarity. Background noise events are drawn separately (:func:`noise_events`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ``(log_prev, reference, t_prev_us)``: flat float32 arrays over pixels and the time.
DvsState = tuple[np.ndarray, np.ndarray, int]
#: ``(pixel index, t_us, polarity)`` as int64, int64, int8 arrays.
EventChunk = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class DvsParams:
    """Per-pixel contrast thresholds (flat float32 arrays, log units)."""

    c_pos: np.ndarray
    c_neg: np.ndarray


def make_dvs_params(n_pixels: int, threshold: float, sigma: float, rng: np.random.Generator) -> DvsParams:
    """Thresholds around ``threshold`` with a Gaussian per-pixel spread ``sigma`` (clipped)."""
    lo, hi = 0.6 * threshold, 1.4 * threshold
    c_pos = np.clip(rng.normal(threshold, sigma, n_pixels), lo, hi).astype(np.float32)
    c_neg = np.clip(rng.normal(threshold, sigma, n_pixels), lo, hi).astype(np.float32)
    return DvsParams(c_pos, c_neg)


def dvs_init(log0: np.ndarray, t0_us: int, params: DvsParams, rng: np.random.Generator) -> DvsState:
    """Initial state: references at a random level within one threshold of ``log0``.

    A pixel that has been observing for a while sits anywhere between its last
    event's level and the next threshold, so the references start uniformly in
    ``(log0 - c_pos, log0 + c_neg)`` rather than exactly at ``log0``.
    """
    log0 = np.asarray(log0, dtype=np.float32).ravel()
    u = rng.random(log0.size, dtype=np.float32)
    ref = log0 - params.c_pos + u * (params.c_pos + params.c_neg)
    return log0.copy(), ref.astype(np.float32), int(t0_us)


def _crossings(idx: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Repeat each pixel index ``counts`` times and number the copies 1..count."""
    rep = np.repeat(idx, counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    k = np.arange(rep.size, dtype=np.int64) - starts + 1
    return rep, k


def dvs_step(log_next: np.ndarray, t_next_us: int, state: DvsState, params: DvsParams) -> tuple[EventChunk, DvsState]:
    """Advance all pixels to ``t_next_us``; return the events of this substep and the new state."""
    log_prev, ref, t_prev_us = state
    log_next = np.asarray(log_next, dtype=np.float32).ravel()
    dt_us = int(t_next_us) - int(t_prev_us)
    diff = log_next - ref
    up = np.flatnonzero(diff >= params.c_pos)
    down = np.flatnonzero(diff <= -params.c_neg)
    ref = ref.copy()
    idx_parts, t_parts, p_parts = [], [], []
    for pix, sign, c in ((up, 1, params.c_pos), (down, -1, params.c_neg)):
        if pix.size == 0:
            continue
        cp = c[pix]
        n = np.floor(np.abs(diff[pix]) / cp).astype(np.int64)
        keep = n > 0
        pix, n, cp = pix[keep], n[keep], cp[keep]
        rep, k = _crossings(pix, n)
        level = ref[rep] + sign * k.astype(np.float32) * np.repeat(cp, n)
        lp = log_prev[rep]
        span = log_next[rep] - lp
        frac = np.clip((level - lp) / np.where(span == 0, 1, span), 0.0, 1.0)
        idx_parts.append(rep.astype(np.int64))
        t_parts.append(int(t_prev_us) + np.rint(frac.astype(np.float64) * dt_us).astype(np.int64))
        p_parts.append(np.full(rep.size, sign, dtype=np.int8))
        ref[pix] += sign * n.astype(np.float32) * cp
    if idx_parts:
        events = (np.concatenate(idx_parts), np.concatenate(t_parts), np.concatenate(p_parts))
    else:
        events = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8))
    return events, (log_next, ref, int(t_next_us))


def noise_events(n_pixels: int, rate_hz: float, t_start_us: int, t_end_us: int, rng: np.random.Generator) -> EventChunk:
    """Background activity: Poisson events, uniform over pixels and time, random polarity."""
    duration_s = max(0, t_end_us - t_start_us) * 1e-6
    n = int(rng.poisson(rate_hz * n_pixels * duration_s)) if rate_hz > 0 else 0
    idx = rng.integers(0, n_pixels, n, dtype=np.int64)
    t_us = rng.integers(t_start_us, t_end_us + 1, n, dtype=np.int64)
    pol = np.where(rng.random(n) < 0.5, -1, 1).astype(np.int8)
    return idx, t_us, pol
