from typing import Any, Callable

__all__ = [
    "BenchError",
    "BenchkitError",
    "ContextError",
    "ModelError",
    "ParamError",
    "PerplexityError",
    "PlacementError",
    "ReplayError",
    "SynthError",
    "WorkerError",
    "__version__",
    "bench",
    "synth_model",
    "worker_main",
]
__version__: str

class BenchkitError(Exception):
    kind: str
    fields: dict[str, str | None]

class ModelError(BenchkitError):
    path: str | None

class ContextError(BenchkitError): ...
class BenchError(BenchkitError): ...

class ParamError(BenchError):
    param: str | None
    value: str | None
    reason: str | None

class PerplexityError(BenchkitError): ...
class ReplayError(BenchkitError): ...
class PlacementError(BenchkitError): ...
class SynthError(BenchkitError): ...
class WorkerError(BenchkitError): ...

def bench(config: str, progress: Callable[[dict[str, Any]], object] | None = None) -> list[str]: ...
def synth_model(
    preset: str | None = None, seed: int | None = None, quant: str | None = None, shape: str | None = None
) -> str: ...
def worker_main() -> None: ...
