import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def test_model() -> str:
    """The real test model (gemma-3-270m Q4_K_M): a test that needs it fails without it."""
    path = Path(os.environ.get("BENCHKIT_TEST_MODEL", ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"))
    assert path.is_file(), f"the real test model is missing at {path}: run scripts/fetch-test-model.sh"
    return str(path)
