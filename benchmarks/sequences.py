"""Sequences with known truth made from real colour photographs, and their flicker.

A camera moves over a photograph (pan, zoom, a little rotation, an exposure
change); halfway through, a cut jumps to another photograph. Every frame is an
affine view ``frame_t(x) = photo(A_t x)``, so the true motion between two
frames is known exactly: frame ``t-1`` shows at ``A_{t-1}^-1 A_t x`` what
frame ``t`` shows at ``x``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_colorize.color import rgb_to_lab
from napari_colorize.temporal import warp


@dataclass
class Sequence:
    """Frames (T, H, W, 3) uint8 of a camera path, their gray versions and the true motion."""

    rgb: np.ndarray
    gray: np.ndarray
    matrices: list  # 3x3 frame -> photo, one per frame
    photo_of: list  # which photo each frame shows
    name: str

    def true_flow(self, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Backward flow frame t -> frame t-1 and where it is valid, or None across a cut."""
        if self.photo_of[t] != self.photo_of[t - 1]:
            return None
        height, width = self.rgb.shape[1:3]
        rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
        ones = np.ones_like(rows)
        points = np.stack([cols.ravel(), rows.ravel(), ones.ravel()])  # x, y, 1
        mapping = np.linalg.inv(self.matrices[t - 1]) @ self.matrices[t]
        moved = mapping @ points
        x, y = moved[0].reshape(height, width), moved[1].reshape(height, width)
        flow = np.stack([y - rows, x - cols], axis=-1).astype(np.float32)
        valid = (y >= 0) & (y <= height - 1) & (x >= 0) & (x <= width - 1)
        return flow, valid


def _view(photo: np.ndarray, matrix: np.ndarray, shape, gain: float) -> np.ndarray:
    from skimage.transform import AffineTransform
    from skimage.transform import warp as sk_warp

    frame = sk_warp(photo / 255.0, AffineTransform(matrix=matrix), output_shape=shape, order=1)
    return np.clip(np.round(frame * gain * 255.0), 0, 255).astype(np.uint8)


def _path(photo_shape, shape, t: float, *, zoom=0.15, turn_deg=3.0, pan=0.25):
    """Frame -> photo matrix at time ``t`` in [0, 1]: panning right, zooming in, turning."""
    ph, pw = photo_shape
    h, w = shape
    scale = min(ph / h, pw / w) * 0.8 / (1.0 + zoom * t)
    angle = np.deg2rad(turn_deg * t)
    cx = pw / 2 + (t - 0.5) * pan * pw
    cy = ph / 2 + (t - 0.5) * 0.3 * pan * ph
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    # frame (x, y) -> photo: rotate and scale about the frame centre, then move to (cx, cy)
    to_centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]])
    rotate = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    place = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]])
    return place @ rotate @ to_centre


def make_sequence(photos, names, frames: int, shape=(192, 256), exposure=0.15) -> Sequence:
    """A camera path over ``photos[0]`` for the first half and ``photos[1]`` after a cut.

    Parameters
    ----------
    photos : list of numpy.ndarray
        RGB uint8 photographs (one: no cut).
    names : list of str
        Their names, for the report.
    frames : int
        Number of frames.
    shape : (int, int)
        Frame size.
    exposure : float
        Brightness falls linearly by this fraction over each shot.
    """
    from napari_colorize.sample_data import rgb_to_gray

    cut = frames // 2 if len(photos) > 1 else frames
    rgb, matrices, photo_of = [], [], []
    for i in range(frames):
        which = 0 if i < cut else 1
        start, end = (0, cut) if which == 0 else (cut, frames)
        t = (i - start) / max(1, end - start - 1)
        matrix = _path(photos[which].shape[:2], shape, t)
        rgb.append(_view(photos[which], matrix, shape, 1.0 - exposure * t))
        matrices.append(matrix)
        photo_of.append(which)
    rgb = np.stack(rgb)
    gray = np.stack([rgb_to_gray(f) for f in rgb])
    return Sequence(rgb, gray, matrices, photo_of, "+".join(names))


def flicker(rgb: np.ndarray, sequence: Sequence) -> float:
    """Mean ab change between each frame and its predecessor warped by the true motion.

    Parameters
    ----------
    rgb : numpy.ndarray
        (T, H, W, 3) uint8 colorized frames.
    sequence : Sequence
        The truth; pairs across the cut are left out.

    Returns
    -------
    float
        In ab units, averaged over valid pixels of every pair.
    """
    ab = rgb_to_lab(rgb)[..., 1:]
    total, count = 0.0, 0
    for t in range(1, len(rgb)):
        truth = sequence.true_flow(t)
        if truth is None:
            continue
        flow, valid = truth
        previous = warp(ab[t - 1], flow)
        change = np.linalg.norm(ab[t] - previous, axis=-1)
        total += float(change[valid].sum())
        count += int(valid.sum())
    return total / max(1, count)
