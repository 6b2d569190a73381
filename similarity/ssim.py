"""Batched structural similarity, numerically equal to scikit-image's.

:func:`ssim_matrix` scores every query image against every gallery image at once.
Per-image statistics (local means and variances) are computed once, with separable
Gaussian filtering as batched matrix products in torch, and reused; only the cross term
is computed per pair, in one compiled loop (``ssim_kernel``) that writes no per-pair map.
With the defaults it matches .metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1.0)`` to within 1e-4 (tested).

Why the padding mode does not matter: scikit-image averages the SSIM map only over the
interior ``crop(S, pad)`` with ``pad = (win_size - 1) // 2``, which is exactly the
Gaussian's radius, so only 'valid' convolution positions contribute. We therefore
convolve without padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where it runs: importing the method registry stays cheap
    import torch


@dataclass(frozen=True)
class SSIMParams:
    sigma: float = 1.5
    K1: float = 0.01
    K2: float = 0.03
    data_range: float = 1.0
    truncate: float = 3.5
    use_sample_covariance: bool = False

    @property
    def radius(self) -> int:
        return int(self.truncate * self.sigma + 0.5)

    @property
    def win_size(self) -> int:
        return 2 * self.radius + 1


def gaussian_kernel(p: SSIMParams) -> np.ndarray:
    """The normalised 1-D Gaussian window (``win_size`` taps), float64."""
    x = np.arange(-p.radius, p.radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / p.sigma) ** 2)
    return k / k.sum()


def _filter_matrix(n: int, p: SSIMParams, dtype: torch.dtype) -> torch.Tensor:
    """(n - 2r, n) banded matrix M so that M @ x is the 'valid' Gaussian filter of x along one axis."""
    import torch

    k = torch.from_numpy(gaussian_kernel(p))
    m = torch.zeros(n - 2 * p.radius, n, dtype=torch.float64)
    for i in range(n - 2 * p.radius):
        m[i, i : i + 2 * p.radius + 1] = k
    return m.to(dtype)


class _Filter:
    """Separable valid-mode Gaussian filter over the last two axes: ``rows @ x @ cols.T``.

    Dense banded-matrix products beat direct convolution here (measured: 0.5 ms vs 2.3 ms
    for 100 images of 64x64 on two cores), because BLAS runs them near peak.
    """

    def __init__(self, h: int, w: int, p: SSIMParams, dtype: torch.dtype) -> None:
        self.rows = _filter_matrix(h, p, dtype)
        self.cols_t = _filter_matrix(w, p, dtype).T.contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.matmul(torch.matmul(self.rows, x), self.cols_t)


def _validate(images: np.ndarray, name: str, p: SSIMParams, dtype: torch.dtype) -> torch.Tensor:
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4:
        arr = np.moveaxis(arr, -1, 1)  # (N, H, W, C) -> (N, C, H, W)
    else:
        raise ValueError(f"{name} must be (N, H, W) grayscale or (N, H, W, C) colour, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be float images scaled to [0, data_range]; convert with img / 255.0")
    if min(arr.shape[-2:]) < p.win_size:
        raise ValueError(f"{name}: images of {arr.shape[-2:]} are smaller than the {p.win_size}px SSIM window")
    import torch

    return torch.from_numpy(np.ascontiguousarray(arr)).to(dtype)


def ssim_matrix(
    queries: np.ndarray,
    gallery: np.ndarray | None = None,
    *,
    params: SSIMParams = SSIMParams(),
    dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Mean SSIM between each query and each gallery image, shape (Q, G).

    Parameters
    ----------
    queries, gallery
        Float arrays (N, H, W) or (N, H, W, C) of the same H, W (and C), scaled to
        ``[0, params.data_range]``. Colour images are scored per channel and averaged,
        as scikit-image does with ``channel_axis=-1``. Without ``gallery`` the queries
        are scored against each other; SSIM is symmetric, so only half the pairs are
        computed.
    params
        Window and stability constants (scikit-image's names).
    dtype
        Computation precision (a torch dtype). float32 (None, the default) agrees with scikit-image's float64 within
        about 1e-5 on real photos; ``torch.float64`` agrees to 1e-12 at half the speed.

    Memory: five filtered maps per image, plus a few rows of scratch per thread; nothing
    grows with the number of pairs but the (Q, G) result.
    """
    import torch

    dtype = torch.float32 if dtype is None else dtype
    q = _validate(queries, "queries", params, dtype)
    symmetric = gallery is None
    g = q if gallery is None else _validate(gallery, "gallery", params, dtype)
    if q.shape[1:] != g.shape[1:]:
        raise ValueError(f"queries {tuple(q.shape[1:])} and gallery {tuple(g.shape[1:])} differ in shape")
    npix = params.win_size**2
    cov_norm = npix / (npix - 1) if params.use_sample_covariance else 1.0
    filt = _Filter(q.shape[-2], q.shape[-1], params, dtype)
    with torch.inference_mode():
        q_stats = _local_statistics(q, filt, cov_norm)
        g_stats = q_stats if symmetric else _local_statistics(g, filt, cov_norm)
        out = _mean_ssim(q_stats, g_stats, params, cov_norm, dtype, symmetric=symmetric)
    out = out.astype(np.float64)
    if symmetric:
        out = np.triu(out) + np.triu(out, 1).T
    return out


@dataclass(frozen=True)
class _LocalStatistics:
    """Per image, the filtered maps SSIM needs. Covariances are computed on mean-centred images (cov is
    shift-invariant), which avoids float32 cancellation in flat regions; the luminance term uses raw means."""

    centred: torch.Tensor  # the image minus its own mean
    mean: torch.Tensor  # raw local mean
    centred_mean: torch.Tensor  # local mean of the centred image
    mean_squared: torch.Tensor  # mean * mean
    variance: torch.Tensor  # local variance (times cov_norm)


def _local_statistics(x: torch.Tensor, filt: _Filter, cov_norm: float) -> _LocalStatistics:
    """The local means and variance of each image of ``x``, computed once per image."""
    shift = x.mean(dim=(-2, -1), keepdim=True)
    xc = x - shift
    mu_c = filt(xc)
    mu = mu_c + shift  # raw local mean (the filter preserves constants)
    var = cov_norm * (filt(xc * xc) - mu_c * mu_c)
    return _LocalStatistics(xc, mu, mu_c, mu * mu, var)


def _mean_ssim(
    q: _LocalStatistics,
    g: _LocalStatistics,
    params: SSIMParams,
    cov_norm: float,
    dtype: torch.dtype,
    *,
    symmetric: bool,
) -> np.ndarray:
    """Mean SSIM of each query against each gallery image, (Q, G) in ``dtype``'s precision, from their
    local statistics; only the cross term is computed per pair, in the compiled kernel (with
    ``symmetric``, only the upper triangle)."""
    import torch

    from similarity.ssim_kernel import mean_ssim_pairs

    c1 = (params.K1 * params.data_range) ** 2
    c2 = (params.K2 * params.data_range) ** 2
    # SSIM = (2 cov + c2)(2 mu_x mu_y + c1) / ((mu_x^2 + mu_y^2 + c1)(var_x + var_y + c2)),
    # with 2 cov = 2 cn F(xc yc) - 2 cn muc_x muc_y; the constants ride on the query's maps.
    np_ = lambda t: np.ascontiguousarray(t.numpy())
    out = np.empty((q.centred.shape[0], g.centred.shape[0]), dtype=np.float64 if dtype == torch.float64 else np.float32)
    scalar = out.dtype.type
    mean_ssim_pairs(
        np_(q.centred),
        np_(g.centred),
        gaussian_kernel(params).astype(out.dtype),
        np_(-2.0 * cov_norm * q.centred_mean),
        np_(g.centred_mean),
        np_(2.0 * q.mean),
        np_(g.mean),
        np_(q.mean_squared + c1),
        np_(g.mean_squared),
        np_(q.variance + c2),
        np_(g.variance),
        scalar(2.0 * cov_norm),
        scalar(c1),
        scalar(c2),
        symmetric,
        out,
    )
    return out
