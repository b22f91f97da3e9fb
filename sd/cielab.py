"""sRGB pixels to CIELAB, where a Euclidean distance is roughly what the eye sees as a colour difference.

    linear = c / 12.92                      if c <= 0.04045  (c = sRGB / 255)
           = ((c + 0.055) / 1.055)^2.4      otherwise
    (X, Y, Z) = M linear, divided by the D65 white (0.95047, 1, 1.08883)
    f(t) = t^(1/3) if t > (6/29)^3, else t / (3 (6/29)^2) + 4/29
    L = 116 f(Y) - 16,   a = 500 (f(X) - f(Y)),   b = 200 (f(Y) - f(Z))

The distance of two colours is delta E 1976, |Lab_1 - Lab_2|; about 2.3 is a just-noticeable difference
(Sharma 2003). LPIPS would be the learned alternative, but its backbone cannot be downloaded here.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# sRGB (D65) primaries to CIE XYZ (IEC 61966-2-1).
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])  # fmt: skip
D65_WHITE = np.array([0.95047, 1.0, 1.08883])
EPSILON = (6 / 29) ** 3


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB values in 0-255 (..., 3), uint8 or float -> CIELAB (..., 3) as float64."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ SRGB_TO_XYZ.T / D65_WHITE  # (..., 3)
    f = np.where(xyz > EPSILON, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (..., 3) -> sRGB in 0-255 (..., 3) float64, clipped to the gamut: srgb_to_lab run backwards."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)  # (..., 3): f(X), f(Y), f(Z)
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * D65_WHITE
    linear = np.clip(xyz @ np.linalg.inv(SRGB_TO_XYZ).T, 0.0, 1.0)
    c = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return c * 255.0


def image_lab(image: Image.Image) -> np.ndarray:
    """(H, W, 3) CIELAB of a PIL image."""
    return srgb_to_lab(np.asarray(image.convert("RGB")))


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over pixels of delta E 1976 between two CIELAB images (H, W, 3)."""
    return float(np.linalg.norm(a - b, axis=-1).mean())
