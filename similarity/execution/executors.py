"""Where a build's models run, by name: here (``local``, the default) or on a Ray cluster
(``ray``). :data:`EXECUTORS` is the one list of names; the command line's ``--executor`` choices
come from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from similarity.execution.protocol import Executor, ExecutorError

# The factories import their executor on use: naming one (the command line's choices) loads
# neither torch nor Ray.


def _local(address: str | None, workers: int | None) -> Executor:
    if address is not None:
        raise ExecutorError("--ray-address needs --executor ray; the local executor runs in this process")
    from similarity.execution.local import LocalExecutor

    return LocalExecutor(workers=workers)


def _ray(address: str | None, workers: int | None) -> Executor:
    # Ray is an optional dependency (``pip install 'lookalike[ray]'``).
    from similarity.execution.ray_executor import RayExecutor

    return RayExecutor(address=address, workers=workers)


#: Executor name -> factory ``(address, workers)``.
EXECUTORS: Mapping[str, Callable[[str | None, int | None], Executor]] = {"local": _local, "ray": _ray}


def create_executor(name: str, *, address: str | None = None, workers: int | None = None) -> Executor:
    """``local`` or ``ray`` (``address``: a running cluster, default a local one; ``workers``: actors
    per model, default one per CPU the cluster has)."""
    factory = EXECUTORS.get(name)
    if factory is None:
        raise ExecutorError(f"unknown executor '{name}'; valid: {', '.join(EXECUTORS)}")
    return factory(address, workers)
