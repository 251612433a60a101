from typing import Any, Callable, final

__all__ = [
    "BenchError",
    "BenchkitError",
    "ContextError",
    "ExperimentError",
    "ModelError",
    "ParamError",
    "PerplexityError",
    "PlacementError",
    "ReplayError",
    "Store",
    "StoreError",
    "SynthError",
    "WorkerError",
    "__version__",
    "bench",
    "experiment_report",
    "experiment_run",
    "perplexity",
    "placement",
    "replay",
    "replay_merge",
    "replay_sweep",
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
class PlacementError(BenchkitError):
    arm: str | None
class StoreError(BenchkitError):
    store: str | None
    path: str | None
    line: str | None
    side: str | None

class SynthError(BenchkitError): ...
class ExperimentError(BenchkitError):
    path: str | None
    key: str | None
    line: int | None
class WorkerError(BenchkitError):
    signal: str | None
    exit_code: str | None
    phase: str | None
    abort_message: str | None

def bench(config: str, progress: Callable[[dict[str, Any]], object] | None = None) -> list[str]: ...
def experiment_run(
    file: str,
    store: str,
    exe: str,
    log_dir: str | None = None,
    progress: Callable[[dict[str, Any]], object] | None = None,
) -> tuple[list[str], str]: ...
def experiment_report(
    name: str,
    store: str,
    baseline: str | None = None,
    metrics: list[str] = ...,
    threshold: float = 0.02,
    alpha: float = 0.05,
    seed: int = 24301,
) -> str: ...
def perplexity(
    flags: list[str], worker: list[str], progress: Callable[[dict[str, Any]], object] | None = None
) -> str: ...
def placement(
    flags: list[str], worker: list[str], progress: Callable[[dict[str, Any]], object] | None = None
) -> tuple[list[str], str]: ...
def replay(
    flags: list[str], worker: list[str], progress: Callable[[dict[str, Any]], object] | None = None
) -> tuple[list[str], str]: ...
def replay_merge(paths: list[str]) -> tuple[list[str], str]: ...
def replay_sweep(
    flags: list[str], worker: list[str], progress: Callable[[dict[str, Any]], object] | None = None
) -> tuple[list[str], str]: ...
@final
class Store:
    def __new__(cls, spec: str, read_only: bool = False) -> Store: ...
    @property
    def name(self) -> str: ...
    def schema_version(self) -> int: ...
    def runs(self, filters: list[str]) -> str: ...
    def entries(self, filters: list[str]) -> str: ...
    def compare(self, flags: list[str]) -> str: ...
    def import_file(self, path: str, format: str = "auto", label: str | None = None) -> tuple[list[int], int]: ...

def synth_model(
    preset: str | None = None, seed: int | None = None, quant: str | None = None, shape: str | None = None
) -> str: ...
def worker_main() -> None: ...
