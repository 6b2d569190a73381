"""Executor and device selection (no GPU on the test machines: the selection logic is tested with
an injected CUDA probe, and the real probe must agree with torch), and progress bars that stay
silent off a terminal."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from similarity.device import DeviceError, place, select_device
from similarity.execution.executors import create_executor
from similarity.execution.local import LocalExecutor
from similarity.execution.protocol import ExecutorError
from similarity.progress import progress_bar


def test_device_auto_picks_cuda_only_when_present():
    asked = []
    probe = lambda answer: lambda: asked.append(answer) or answer
    assert select_device("auto", cuda_available=probe(True)) == "cuda"
    assert select_device("auto", cuda_available=probe(False)) == "cpu"
    assert select_device("cuda", cuda_available=probe(True)) == "cuda"
    assert asked == [True, False, True]
    assert select_device("cpu", cuda_available=lambda: pytest.fail("cpu needs no probe")) == "cpu"
    with pytest.raises(DeviceError, match="torch sees no CUDA GPU; use device auto or cpu"):
        select_device("cuda", cuda_available=probe(False))
    with pytest.raises(DeviceError, match="valid: auto, cuda, cpu"):
        select_device("tpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device() == expected and LocalExecutor().device == expected


def test_place_moves_only_components_that_have_a_network():
    class Net:
        def __init__(self) -> None:
            self.moved: list[str] = []

        def to_device(self, device: str) -> str:
            self.moved.append(device)
            return device

    net = Net()
    assert place(net, "cuda") == "cuda" and net.moved == ["cuda"]
    assert place(net, "cpu") == "cpu" and net.moved == ["cuda"]  # the CPU is where it already is
    assert place(object(), "cuda") == "cpu"  # e.g. SSIM: nothing to move


def test_unknown_executors_and_misplaced_flags_are_refused():
    with pytest.raises(ExecutorError, match="unknown executor 'spark'; valid: local, ray"):
        create_executor("spark")
    with pytest.raises(ExecutorError, match="--ray-address needs --executor ray"):
        create_executor("local", address="ray://head:10001")


def test_progress_bars_only_on_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert progress_bar(total=3, desc="x").disable  # a log file: no bar
    monkeypatch.setattr("sys.stderr", Tty())
    bar = progress_bar(total=3, desc="x")
    assert not bar.disable
    bar.update(3)
    bar.close()
    assert "3/3" in __import__("sys").stderr.getvalue()
    assert progress_bar(total=3, desc="x", enabled=False).disable  # --quiet / --json


def test_u2netp_runs_on_cuda_only_with_onnxruntimes_cuda_provider():
    import onnxruntime as ort

    from similarity.segmenters import create_segmenter

    seg = create_segmenter("u2netp")
    assert place(seg, "cpu") == "cpu" and seg.session.get_providers() == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():  # onnxruntime-gpu on a GPU machine
        assert place(seg, "cuda") == "cuda" and seg.session.get_providers()[0] == "CUDAExecutionProvider"
    else:  # says so, names the fix, and keeps working on the CPU
        with pytest.warns(RuntimeWarning, match="no CUDA provider .*pip install onnxruntime-gpu"):
            assert place(seg, "cuda") == "cpu"
        assert seg.session.get_providers() == ["CPUExecutionProvider"]


@pytest.mark.slow  # runs Mask R-CNN
def test_maskrcnn_and_the_local_executor_place_segmenters(monkeypatch, small_catalog, tmp_path):
    from PIL import Image

    from similarity.catalogs.catalog import load_catalog
    from similarity.execution.cache import Cache
    from similarity.segmenters import create_segmenter

    seg = create_segmenter("maskrcnn", pretrained=None)  # random init: tests only
    moved: list[str] = []
    monkeypatch.setattr(seg.net, "to", lambda device: moved.append(device) or seg.net)
    assert place(seg, "cuda") == "cuda" and moved == ["cuda"] and seg.device == "cuda"
    seg.device = "cpu"  # there is no GPU here: run where the weights are
    assert seg.masks([Image.new("RGB", (64, 48), "white")])[0].shape == (48, 64)

    class Recording:  # a segmenter that records where the executor put it
        name, trivial, placed = "rec", False, []

        def identity(self) -> str:
            return "rec-1"

        def to_device(self, device: str) -> str:
            self.placed.append(device)
            return device

        def masks(self, images):
            return [np.ones((im.height, im.width), np.float32) for im in images]

    ex = LocalExecutor()
    ex.device = "cuda"  # as select_device gives on a GPU machine
    items = load_catalog(small_catalog).items[:2]
    rec = Recording()
    ex.segment(items, rec, cache=Cache(tmp_path), progress=False)
    assert rec.placed == ["cuda"]
