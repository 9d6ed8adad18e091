"""The erfc fit behind opencl's GELU (``kernels/opencl/unary.cl``, ``gelu``).

erfc(z) = t * exp(-z^2 + P(t)), t = 1 / (1 + z / 2), P a degree-9 polynomial fitted here
(least squares, iteratively reweighted towards the largest residuals) to log(erfcx(z) / t)
over z in [0, 9.5], where float32's erfc ends. Prints P's coefficients as float32 (lowest
power first), the fit's error in log space and the relative error of erfc evaluated in
float32 as the kernel does (its exp of -z^2 dominates: ~4e-6 at z ~ 5).

    python scripts/gelu_erfc_fit.py
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfc, erfcx

DEGREE = 9


def fit(degree: int = DEGREE) -> np.ndarray:
    z = np.linspace(0.0, 9.5, 40001)
    t = 1.0 / (1.0 + 0.5 * z)
    y = np.log(erfcx(z) / t)
    a = np.vander(t, degree + 1, increasing=True)
    w = np.ones_like(z)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    for _ in range(30):
        r = np.abs(a @ coef - y)
        w = w * (1.0 + r / r.max())
        coef, *_ = np.linalg.lstsq(a * w[:, None], y * w, rcond=None)
    return coef.astype(np.float32)


def main() -> None:
    coef = fit()
    z = np.linspace(0.0, 5.0, 20001)
    z32 = z.astype(np.float32)
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.5) * z32)
    p = np.zeros_like(t)
    for c in coef[::-1]:
        p = p * t + c
    rel = np.abs(t * np.exp(-z32 * z32 + p) - erfc(z)) / erfc(z)
    print("coefficients:", ", ".join(f"{c!r}f" for c in coef.tolist()))
    print(f"max relative error of erfc in float32 over [0, 5]: {rel.max():.2e}")


if __name__ == "__main__":
    main()
