from pathlib import Path

import pytest

import benchkit

TEXT = (Path(__file__).resolve().parents[2] / "README.md").read_text() * 2


def test_perplexity_of_the_real_model_with_chunks_and_provenance(test_model):
    events = []
    r = benchkit.perplexity(test_model, TEXT, n_ctx=128, chunks=2, threads=2, progress=events.append)
    assert [e["chunk"] for e in events] == [1, 2]
    assert 1 < r["ppl"] < 10_000 and r["ppl_uncertainty"] > 0
    df = r.to_pandas()
    assert list(df["chunk"]) == [1, 2]
    assert df["ppl"].iloc[-1] == pytest.approx(r["ppl"])
    assert r.provenance is not None and r.provenance["dataset"]["sha256"]


def test_kl_divergence_of_a_model_against_itself_is_zero(test_model, tmp_path):
    base = tmp_path / "base.kld"
    benchkit.perplexity(test_model, TEXT, n_ctx=128, chunks=2, save_logits=base)
    r = benchkit.kl_divergence(test_model, base)
    assert r["kld"]["value"] == pytest.approx(0.0, abs=1e-4)
    assert len(r.to_dicts()) == 2


def test_bad_inputs_raise_typed_errors(test_model, tmp_path):
    with pytest.raises(benchkit.ModelError) as e:
        benchkit.perplexity(tmp_path / "none.gguf", TEXT)
    assert e.value.path == str(tmp_path / "none.gguf")
    # In-process, the library's own variant; from a worker, the same message as kind Failed.
    with pytest.raises(benchkit.PerplexityError) as e:
        benchkit.perplexity(test_model, "too short", n_ctx=128, isolate=False)
    assert e.value.kind == "TooFewTokens"
    with pytest.raises(benchkit.PerplexityError) as e:
        benchkit.perplexity(test_model, "too short", n_ctx=128)
    assert e.value.kind == "Failed" and "tokens" in str(e.value)
    with pytest.raises(benchkit.ParamError):
        benchkit.perplexity(test_model, TEXT, no_such_flag=1)
