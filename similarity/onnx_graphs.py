"""ONNX Runtime as the embedding methods' inference runtime: export once, check, store, run.

A method's encoder (letterboxed uint8 images -> L2-normalised descriptors, the input normalisation
and every descriptor option inside the graph) is exported from the verified torch weights with
torch's TorchScript exporter (opset :data:`OPSET`) and checked against the torch model on fixed
images: every image's descriptor must have cosine >= :data:`MIN_COSINE` with torch's, else
:class:`ExportMismatch` names the method and the gap. The graph is then stored in the model folder
(``models/`` of the cache) as ``<method identity>-<exporter digest>.onnx``: the method identity
hashes the weights' digest, the variant, input size, pooling and every other option; the exporter
digest hashes the graph's format (:data:`GRAPH_FORMAT`), torch's and onnx's versions and the opset.
It is written atomically (a reader sees the whole file or none), so a killed export and several
processes exporting at once are both safe.
Without a model folder (a method used directly from Python) the graph is exported in memory, once
per process.

The session runs on onnxruntime's CUDA provider where the method is placed on ``cuda`` and the
installed onnxruntime has it (``onnxruntime-gpu``); otherwise on the CPU, said once in a warning.
Its intra-op threads are the caller's share of the cores (the executors set it), so the local
pipeline and Ray actors do not oversubscribe.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from similarity.errors import UserError
from similarity.files import atomic_write_bytes

OPSET = 17
#: What the graph takes and gives; part of every graph's file name, raised whenever it changes.
#: 2: letterboxed uint8 images (N, H, W, 3) in, L2-normalised descriptors out.
GRAPH_FORMAT = 2
MIN_COSINE = 0.9999
RUNTIMES = ("onnx", "torch")

#: Graphs exported in this process without a model folder, by file name.
_IN_MEMORY: dict[str, bytes] = {}
_WARNED_NO_CUDA: set[str] = set()


class ExportMismatch(UserError, RuntimeError):
    """An exported graph whose descriptors differ from torch's; the message names the method and the gap."""


def exporter_tag() -> str:
    """What, besides the method, decides the exported graph: its format, torch's and onnx's versions and
    the opset."""
    import onnx
    import torch

    return f"format {GRAPH_FORMAT}; torch {torch.__version__}; onnx {onnx.__version__}; opset {OPSET}; torchscript"


def graph_file_name(method_identity: str) -> str:
    digest = hashlib.sha256(exporter_tag().encode()).hexdigest()[:10]
    return f"{method_identity}-{digest}.onnx"


def export_graph(module: Any, example: np.ndarray) -> bytes:
    """``module`` (batch -> descriptors) as ONNX bytes, the batch dimension dynamic."""
    import torch

    with tempfile.TemporaryDirectory(prefix="lookalike-onnx-") as tmp, warnings.catch_warnings():
        out = Path(tmp) / "graph.onnx"
        # torch >= 2.9 prefers its dynamo exporter (which needs onnxscript); the TorchScript exporter
        # used here is the one the runtime was measured and checked with. Its deprecation notice and
        # tracer warnings about Python scalars (sizes are constants of the graph) are expected.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")  # flip: a Slice of step -1
        torch.onnx.export(
            module.eval(),
            (torch.from_numpy(example),),
            out,
            dynamo=False,
            opset_version=OPSET,
            input_names=["pixels"],
            output_names=["descriptors"],
            dynamic_axes={"pixels": {0: "batch"}, "descriptors": {0: "batch"}},
        )
        return out.read_bytes()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64 * b64).sum(1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))


def check_against_torch(label: str, onnx_out: np.ndarray, torch_out: np.ndarray) -> float:
    """The lowest per-image cosine; :class:`ExportMismatch` when it is below :data:`MIN_COSINE`."""
    low = float(cosines(onnx_out, torch_out).min())
    if not low >= MIN_COSINE:
        raise ExportMismatch(
            f"{label}: the ONNX export differs from the torch model: lowest cosine {low:.6f} on the check "
            f"batch, a gap of {1 - low:.2e} beyond the {1 - MIN_COSINE:.0e} allowed; run this method with "
            "runtime=torch and report the method and its options"
        )
    return low


def providers(device: str, label: str) -> list[str]:
    """onnxruntime's providers for ``device``: CUDA where asked for and installed, else the CPU (with a
    warning, once per method, when CUDA was asked for)."""
    import onnxruntime as ort

    if device == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if label not in _WARNED_NO_CUDA:
            _WARNED_NO_CUDA.add(label)
            warnings.warn(
                f"{label} runs on the CPU: this onnxruntime has no CUDA provider (pip install onnxruntime-gpu "
                "in place of onnxruntime, or use runtime=torch to run it on the GPU with torch)",
                RuntimeWarning,
                stacklevel=3,
            )
    return ["CPUExecutionProvider"]


def make_session(model: bytes, *, device: str, threads: int, label: str) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(0, threads)  # 0: onnxruntime's default, one per physical core
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, sess_options=opts, providers=providers(device, label))


def session_providers(session: Any) -> list[str]:
    return list(session.get_providers())


def load_or_export(
    *,
    label: str,
    identity: str,
    folder: Path | None,
    module: Callable[[], Any],
    check_batch: Callable[[], np.ndarray],
    reference: Callable[[], np.ndarray],
    device: str,
    threads: int,
    reuse: bool = True,
) -> Any:
    """The method's session: from ``folder`` when its graph is there, else exported from ``module()``,
    checked (its output on ``check_batch()`` against ``reference()``, the torch network's features of the
    same images), and stored (in ``folder``, or in memory)."""
    name = graph_file_name(identity)
    if not reuse:  # random weights (tests): the identity does not tell two networks apart
        folder = None
        _IN_MEMORY.pop(name, None)
    path = folder / name if folder is not None else None
    if path is not None and path.is_file():
        return make_session(path.read_bytes(), device=device, threads=threads, label=label)
    if path is None and name in _IN_MEMORY:
        return make_session(_IN_MEMORY[name], device=device, threads=threads, label=label)
    batch = check_batch()
    model = export_graph(module(), batch[:1])
    session = make_session(model, device="cpu", threads=threads, label=label)
    check_against_torch(label, session.run(None, {"pixels": batch})[0], reference())
    if path is not None:
        atomic_write_bytes(path, model)
    elif reuse:
        _IN_MEMORY[name] = model
    return session if device == "cpu" else make_session(model, device=device, threads=threads, label=label)


def normalised_module(net: Any, encode: Callable[[Any], Any], mean: Sequence[float], std: Sequence[float]) -> Any:
    """What is exported: a torch module holding ``net`` that takes letterboxed images (N, H, W, 3) as
    uint8, scales them to [0, 1], normalises them with ``mean`` and ``std`` per channel, transposes them
    to (N, 3, H, W), encodes them with ``encode`` and L2-normalises the descriptors."""
    import torch

    class Normalised(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, 3, 1, 1))
            self.register_buffer("scale", 1.0 / torch.tensor(std, dtype=torch.float32).reshape(1, 3, 1, 1))

        def forward(self, pixels: Any) -> Any:
            x = pixels.permute(0, 3, 1, 2).float() * (1.0 / 255.0)
            return torch.nn.functional.normalize(encode((x - self.mean) * self.scale).float(), dim=1)

    return Normalised()


def check_runtime(method: str, runtime: object) -> str:
    from similarity.registry import InvalidOption

    if runtime not in RUNTIMES:
        raise InvalidOption(f"{method} runtime={runtime!r} unknown; valid: {', '.join(RUNTIMES)}")
    return str(runtime)
