"""Executor and device selection (no GPU on the test machines: the selection logic is tested with
an injected CUDA probe, and the real probe must agree with torch), and progress bars that stay
silent off a terminal."""

from __future__ import annotations

import io

import pytest
import torch

from similarity.device import DeviceError, place, select_device
from similarity.executors import ExecutorError, LocalExecutor, create_executor
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

        def to_device(self, device: str) -> None:
            self.moved.append(device)

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
