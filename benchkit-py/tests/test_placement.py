import pytest

import benchkit


def test_arms_are_applied_verified_and_compared(test_model, tmp_path):
    r = benchkit.placement(
        f"bench -m {test_model} -p 16 -n 4 -t 2 -r 1",
        ["default", "batch:policy=batch", "membind:mem=bind:0"],
        rounds=2,
        store=tmp_path / "placement.db",
        label="arms",
    )
    df = r.to_pandas()
    assert set(df["name"]) == {"default", "batch", "membind"}
    assert set(df["metric"]) == {"pp16", "tg4"}
    assert df["valid"].all(), df[["name", "metric", "invalid_reason"]]
    assert (df[df["name"] == "default"]["ratio_vs_baseline"] == 1.0).all()
    batch = next(a for a in r.arms if a["name"] == "batch")
    assert batch["observed"]["policy"] == ["SCHED_BATCH"]
    membind = next(a for a in r.arms if a["name"] == "membind")
    assert membind["observed"]["mem_policy"] == ["bind:0"]
    assert len(r.trials) == 6
    assert r.provenance is not None and r.provenance["settings"]["rounds"] == 2
    # Stored as `--store` stores it: one record per arm and metric, the rounds as samples.
    stored = benchkit.Store(tmp_path / "placement.db").records().to_pandas()
    assert set(stored["kind"]) == {"placement"} and set(stored["label"]) == {"arms"}
    assert sorted(zip(stored["arm"], stored["test"])) == sorted(zip(df["name"], df["metric"]))
    assert (stored["ts_n"] == 2).all()


def test_bad_arms_raise_placement_error():
    with pytest.raises(benchkit.PlacementError) as e:
        benchkit.placement("bench -p 16 -n 0", ["x:cpus=banana"])
    assert "cpus" in str(e.value)
    with pytest.raises(benchkit.PlacementError) as e:
        benchkit.placement("bench -p 16 -n 0", ["bad:policy=fifo:5,scheduler=scx_lavd"])
    assert e.value.arm == "bad"
