"""Batched structural similarity, numerically equal to scikit-image's.

:func:`ssim_matrix` scores every query image against every gallery image at once with
separable Gaussian filtering in torch. Per-image statistics (local means and variances)
are computed once and reused; only the cross term is computed per pair, in blocks that
bound memory. With the defaults it matches
``skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1.0)`` to within 1e-4 (tested).

Why the padding mode does not matter: scikit-image averages the SSIM map only over the
interior ``crop(S, pad)`` with ``pad = (win_size - 1) // 2``, which is exactly the
Gaussian's radius, so only 'valid' convolution positions contribute. We therefore
convolve without padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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


def _filter_matrix(n: int, p: SSIMParams, dtype: torch.dtype) -> torch.Tensor:
    """(n - 2r, n) banded matrix M so that M @ x is the 'valid' Gaussian filter of x along one axis."""
    x = torch.arange(-p.radius, p.radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / p.sigma) ** 2)
    k = k / k.sum()
    m = torch.zeros(n - 2 * p.radius, n, dtype=torch.float64)
    for i in range(n - 2 * p.radius):
        m[i, i:i + 2 * p.radius + 1] = k
    return m.to(dtype)


class _Filter:
    """Separable valid-mode Gaussian filter over the last two axes: ``rows @ x @ cols.T``.

    Dense banded-matrix products beat direct convolution here (measured: 0.5 ms vs 2.3 ms
    for 100 images of 64x64 on two cores), because BLAS runs them near peak.
    """

    def __init__(self, h: int, w: int, p: SSIMParams, dtype: torch.dtype, scale: float = 1.0) -> None:
        self.rows = _filter_matrix(h, p, dtype)
        self.cols_t = (_filter_matrix(w, p, dtype).T * scale).contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
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
    return torch.from_numpy(np.ascontiguousarray(arr)).to(dtype)


def ssim_matrix(queries: np.ndarray, gallery: np.ndarray | None = None, *, params: SSIMParams = SSIMParams(),
                block: int = 128, dtype: torch.dtype = torch.float32) -> np.ndarray:
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
    block
        Gallery images per step; memory is about ``block * H * W * C * 4`` bytes times a
        small constant, whatever the number of images.
    dtype
        Computation precision. float32 (default) agrees with scikit-image's float64 within
        about 1e-5 on real photos; ``torch.float64`` agrees to 1e-12 at half the speed.
    """
    q = _validate(queries, "queries", params, dtype)
    symmetric = gallery is None
    g = q if symmetric else _validate(gallery, "gallery", params, dtype)
    if q.shape[1:] != g.shape[1:]:
        raise ValueError(f"queries {tuple(q.shape[1:])} and gallery {tuple(g.shape[1:])} differ in shape")
    npix = params.win_size ** 2
    cov_norm = npix / (npix - 1) if params.use_sample_covariance else 1.0
    filt = _Filter(q.shape[-2], q.shape[-1], params, dtype)
    filt_2cov = _Filter(q.shape[-2], q.shape[-1], params, dtype, scale=2.0 * cov_norm)
    c1 = (params.K1 * params.data_range) ** 2
    c2 = (params.K2 * params.data_range) ** 2
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float64)
    with torch.inference_mode():
        # Covariances are computed on mean-centred images (cov is shift-invariant), which
        # avoids float32 cancellation in flat regions; the luminance term uses raw means.
        def stats(x: torch.Tensor):
            shift = x.mean(dim=(-2, -1), keepdim=True)
            xc = x - shift
            mu_c = filt(xc)
            mu = mu_c + shift  # raw local mean (the filter preserves constants)
            var = cov_norm * (filt(xc * xc) - mu_c * mu_c)
            return xc, mu, mu_c, (mu * mu).add_(c1), var.add_(c2)

        qc, mu_q, muc_q, a_q, b_q = stats(q)
        gc, mu_g, muc_g, a_g, b_g = (qc, mu_q, muc_q, a_q, b_q) if symmetric else stats(g)
        a_g = a_g - c1  # so that a_q + a_g = mu_x^2 + mu_y^2 + c1
        b_g = b_g - c2  # so that b_q + b_g = var_x + var_y + c2
        c1_t = torch.tensor(c1, dtype=dtype)
        neg_c2 = torch.tensor(-c2, dtype=dtype)
        for i in range(q.shape[0]):
            # Symmetric case: only gallery items from the diagonal on; the rest by symmetry.
            for start in range(i if symmetric else 0, g.shape[0], block):
                sl = slice(start, min(start + block, g.shape[0]))
                # 2 cov + c2 = 2 cn filt(xc yc) - (2 cn muc_x muc_y - c2)
                cs = filt_2cov(qc[i:i + 1] * gc[sl])
                cs.sub_(torch.addcmul(neg_c2, muc_q[i:i + 1], muc_g[sl], value=2.0 * cov_norm))
                cs.mul_(torch.addcmul(c1_t, mu_q[i:i + 1], mu_g[sl], value=2.0))  # * (2 mu_x mu_y + c1)
                den = torch.add(a_q[i:i + 1], a_g[sl])
                den.mul_(torch.add(b_q[i:i + 1], b_g[sl]))
                cs.div_(den)
                out[i, sl] = cs.mean(dim=(1, 2, 3)).numpy()
    if symmetric:
        upper = np.triu(out)
        out = upper + np.triu(out, 1).T
    return out
