"""Which device the models run on: ``auto`` (CUDA when present, else the CPU), ``cuda`` or ``cpu``.

Asking for ``cuda`` where there is none is an error, never a silent move to the CPU. The device
never changes a component's identity: features computed on either are cached under one name
(they agree to float32 rounding, and the tests compare them with ``allclose``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from similarity.errors import UserError

DEVICES = ("auto", "cuda", "cpu")


class DeviceError(UserError, ValueError):
    """A device that cannot be used; the message says what is available."""


def _torch_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def select_device(requested: str = "auto", *, cuda_available: Callable[[], bool] = _torch_cuda) -> str:
    """``"cuda"`` or ``"cpu"`` for ``requested``; ``cuda_available`` is asked only when it matters."""
    if requested not in DEVICES:
        raise DeviceError(f"device '{requested}' unknown; valid: {', '.join(DEVICES)}")
    if requested == "cpu":
        return "cpu"
    has_cuda = cuda_available()
    if requested == "cuda" and not has_cuda:
        raise DeviceError("device 'cuda' asked for, but torch sees no CUDA GPU; use device auto or cpu")
    return "cuda" if has_cuda else "cpu"


def place(component: Any, device: str) -> str:
    """Move ``component``'s network to ``device`` when it has one to move (embedding methods,
    Mask R-CNN, U²-Net); returns where it runs, which the component decides (U²-Net stays on the
    CPU, with a warning naming the fix, where onnxruntime has no CUDA provider). Components
    without ``to_device`` (SSIM) run on the CPU."""
    mover = getattr(component, "to_device", None)
    if device != "cpu" and callable(mover):
        return str(mover(device))
    return "cpu"
