import os

import pytest

import benchkit


def test_a_preset_model_is_generated_once_and_cached():
    path = benchkit.synth.model("tiny", seed=7)
    assert path.endswith(".gguf") and os.path.getsize(path) > 0
    assert benchkit.synth.model("tiny", seed=7) == path
    assert benchkit.synth.model("tiny", seed=8) != path


def test_a_custom_shape_runs():
    path = benchkit.synth.model("tiny", shape={"n_layer": 1}, quant="f32")
    r = benchkit.bench(path, n_prompt=[8], n_gen=[], repetitions=1)
    assert r.records[0]["status"] == "ok"


def test_bad_presets_and_shapes_are_refused():
    with pytest.raises(benchkit.SynthError) as e:
        benchkit.synth.model("nope")
    assert e.value.kind == "UnknownPreset"
    with pytest.raises(benchkit.ParamError) as e:
        benchkit.synth.model("tiny", shape={"n_wings": 2})
    assert e.value.param == "n_wings"
