"""Newton's method with backtracking line search: the maximum-likelihood solver shared by the Bradley-Terry and
Plackett-Luce fits."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def newton_minimize(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    hess: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    *,
    what: str,
    max_iter: int = 200,
) -> np.ndarray:
    """Minimise a smooth convex function by Newton steps with backtracking line search. ``fun`` returns the
    value and the gradient, ``hess`` the Hessian; ``what`` names the model in the error.

    Used instead of scipy's L-BFGS-B, which with multithreaded OpenBLAS and busy cores ran
    40 times slower on these tiny problems (measured); everything here is small numpy work.
    Stops when the Newton decrement g' H^-1 g falls below 1e-12, or when no step lowers f any
    more and the decrement is below 1e-12 of |f|: the decrease Newton predicts (half the
    decrement) is then lost in the rounding of f, and x is the minimum to machine precision.
    Large samples get there: a bootstrap fit of 14,000 ranking answers (f = 19,730) stayed at a
    decrement of 1.4e-12, taking steps that left f unchanged, until the step limit. Raises
    RuntimeError otherwise (no step lowers f while the decrement is larger, or the step limit).
    """
    x = np.asarray(x0, dtype=float).copy()
    f, g = fun(x)
    for _ in range(max_iter):
        step = np.linalg.solve(hess(x), g)
        decrement = float(g @ step)
        if decrement < 1e-12:
            return x
        t = 1.0
        while True:
            f_new, g_new = fun(x - t * step)
            if f_new <= f - 0.25 * t * decrement or t < 1e-12:
                break
            t /= 2
        if not f_new < f:  # no step along the Newton direction lowers f
            if decrement < 1e-12 * abs(f):
                return x
            raise RuntimeError(
                f"{what} fit: no step lowers the objective (f = {f:.6g}, Newton decrement {decrement:.3g}); "
                "it cannot be fitted to these data"
            )
        x, f, g = x - t * step, f_new, g_new
    raise RuntimeError(f"{what} fit did not converge in {max_iter} Newton steps")
