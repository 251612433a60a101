"""Synthetic GGUF models of well-known shapes, generated once and cached."""

from __future__ import annotations

import json
from typing import Any

from benchkit import _native


def model(
    preset: str | None = None,
    *,
    seed: int | None = None,
    quant: str | None = None,
    shape: dict[str, Any] | None = None,
) -> str:
    """The path of a synthetic model: ``preset`` (``"tinyllama-1.1b"``, ``"llama-3.2-1b"``,
    ``"llama-3.1-8b"``, ``"qwen2.5-0.5b"``, ``"tiny"``; default the embedded default model's),
    weights from ``seed``, quantised to ``quant`` (``"f32"``: not quantised), with ``shape``
    fields (``n_layer``, ``n_embd``...) overriding the preset's."""
    return _native.synth_model(preset, seed, quant, json.dumps(shape) if shape is not None else None)
