from __future__ import annotations

from pathlib import Path

import pytest

from similarity.weights import WeightSpec, WeightsUnavailable, list_weights, weight_spec


def _spec(tmp_path, fetch):
    target = tmp_path / "w.bin"
    return target, WeightSpec(
        name="toy",
        description="toy weights",
        source="test",
        how_to_get="get them",
        locate=lambda: target if target.is_file() else None,
        fetch=fetch,
    )


def test_missing_weights_download_announced_when_online(tmp_path, capsys):
    target, spec = _spec(tmp_path, lambda: (target.write_bytes(b"x"), target)[1])
    assert spec.status(offline=False) == "downloads on first use"
    assert spec.require(offline=False) == target
    assert "downloading them now" in capsys.readouterr().err
    assert spec.status(offline=False) == "present"


def test_offline_forbids_download(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "0")  # the switch is the argument, never the environment
    called = []
    _, spec = _spec(tmp_path, lambda: called.append(1))
    assert spec.status(offline=True) == "missing" and spec.status() == "missing"  # no download unless asked
    with pytest.raises(WeightsUnavailable, match=r"offline mode is on.*get them"):
        spec.require(offline=True)
    with pytest.raises(WeightsUnavailable, match=r"offline mode is on.*pass offline=False.*get them"):
        spec.require()
    assert not called


def test_failed_download_is_a_clear_error(tmp_path):
    def fetch() -> Path:
        raise OSError("network unreachable")

    _, spec = _spec(tmp_path, fetch)
    with pytest.raises(WeightsUnavailable, match=r"downloading weights 'toy' failed.*network unreachable"):
        spec.require(offline=False)


def test_table_and_lookup():
    names = {w.name for w in list_weights()}
    assert {"efficientnet-lite0", "u2netp", "maskrcnn-coco", "efficientnet-b0", "efficientnet-b7"} <= names
    assert {"efficientnet-lite1", "efficientnet-lite2"} <= names
    assert weight_spec("clip:ViT-B-16/openai").name == "clip:ViT-B-16/openai"
    with pytest.raises(KeyError, match="unknown weights 'resnet'"):
        weight_spec("resnet")
