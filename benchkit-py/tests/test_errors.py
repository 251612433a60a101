import pytest

import benchkit


def test_every_area_has_its_exception_under_one_base():
    for cls in (
        benchkit.ModelError,
        benchkit.ContextError,
        benchkit.BenchError,
        benchkit.ParamError,
        benchkit.PerplexityError,
        benchkit.ReplayError,
        benchkit.PlacementError,
        benchkit.SynthError,
        benchkit.StoreError,
        benchkit.WorkerError,
    ):
        assert issubclass(cls, benchkit.BenchkitError)
    assert issubclass(benchkit.ParamError, benchkit.BenchError)


def test_a_bad_model_path_raises_model_error_with_its_fields(tmp_path):
    with pytest.raises(benchkit.ModelError) as e:
        benchkit.bench(str(tmp_path / "missing.gguf"))
    assert e.value.kind == "NotFound"
    assert e.value.path == str(tmp_path / "missing.gguf")
    assert e.value.fields == {"path": str(tmp_path / "missing.gguf")}


def test_a_corrupt_model_raises_model_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"PK\x03\x04not a model at all")
    with pytest.raises(benchkit.ModelError) as e:
        benchkit.bench(str(bad))
    assert e.value.kind == "NotGguf"
    assert "not a GGUF file" in str(e.value)


def test_bad_parameters_name_themselves():
    with pytest.raises(benchkit.ParamError) as e:
        benchkit.bench(n_prompt=[16], bogus=3)
    assert (e.value.param, e.value.value) == ("bogus", "[3]")
    with pytest.raises(benchkit.ParamError) as e:
        benchkit.bench(n_prompt=[16], type_k=["q9"])
    assert e.value.param == "type_k"
    assert "unknown variant" in e.value.reason
    with pytest.raises(benchkit.ParamError) as e:
        benchkit.bench(n_prompt=[16], timeout=0)
    assert e.value.param == "timeout"
    with pytest.raises(benchkit.ParamError) as e:
        benchkit.bench(n_prompt=[0], n_gen=[0])
    assert e.value.kind == "Empty"
