"""minigru race: variants x seeds, mean ± std, and the same results serially, in processes
(joblib) and on a Dask cluster that the test starts on this machine."""

import io
import json

import numpy as np
import pytest

from minigru.cli import main
from minigru.demos import binary_addition
from minigru.demos.race import race_runs, run_race, summarise
from demo_helpers import is_png

TINY = {"train_pairs": 64, "test_pairs": 128, "hidden_size": 4, "epochs": 2, "batch_size": 32,
        "long_pairs": 20}
VARIANTS = ["rnn", "gru"]


def _outcome(runs):
    """What must not depend on where a run ran: everything but the clock."""
    return [(r["variant"], r["seed"], r["value"], r["loss"], r["bit_accuracy"]) for r in runs]


@pytest.fixture(scope="module")
def serial():
    return race_runs("binary-addition", VARIANTS, 2, backend="numpy", seed=3, settings=TINY)


def test_runs_are_variant_by_variant_and_seed_by_seed(serial):
    assert [(r["variant"], r["seed"]) for r in serial] == [("rnn", 3), ("rnn", 4), ("gru", 3),
                                                           ("gru", 4)]
    alone = binary_addition.train_variant("gru", backend="numpy", seed=4, settings=TINY)
    assert serial[3]["value"] == alone["value"] and serial[3]["loss"] == alone["loss"]
    assert serial[2]["loss"] != serial[3]["loss"]                 # another seed, another run


def test_processes_give_the_serial_results(serial):
    parallel = race_runs("binary-addition", VARIANTS, 2, backend="numpy", seed=3,
                         settings=TINY, jobs=2, progress=False)
    assert _outcome(parallel) == _outcome(serial)


def test_a_dask_cluster_gives_the_serial_results(serial):
    distributed = pytest.importorskip("distributed", reason='pip install "dask[distributed]"')
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = race_runs("binary-addition", VARIANTS, 2, backend="numpy", seed=3,
                           settings=TINY, engine="dask", scheduler=cluster.scheduler_address,
                           progress=False)
    assert _outcome(remote) == _outcome(serial)


def test_summarise_gives_mean_and_sample_std():
    runs = [{"variant": "a", "seed": s, "value": v, "params": 10, "seconds_per_epoch": t,
             "loss": [v + 1, v]} for s, v, t in ((0, 1.0, 1.0), (1, 2.0, 2.0), (2, 3.0, 3.0))]
    runs.append({"variant": "b", "seed": 0, "value": 5.0, "params": 20, "seconds_per_epoch": 1.0,
                 "loss": [6.0, 5.0]})
    m = summarise(runs)
    assert m["a"]["mean"] == 2.0 and m["a"]["std"] == pytest.approx(1.0)   # sqrt(2 / (3 - 1))
    assert m["a"]["values"] == [1.0, 2.0, 3.0] and m["a"]["seeds"] == [0, 1, 2]
    assert m["a"]["loss"] == [3.0, 2.0] and m["a"]["loss_std"] == pytest.approx([1.0, 1.0])
    assert m["a"]["seconds_per_epoch"] == 2.0
    assert m["b"]["std"] == 0.0 and m["b"]["values"] == [5.0]


def test_run_race_reports_mean_std_json_and_figure(tmp_path):
    r = run_race("binary-addition", VARIANTS, seeds=2, backend="numpy", out=str(tmp_path),
                 settings=TINY, progress=False)
    assert r["seeds"] == 2 and set(r["models"]) == set(VARIANTS) and len(r["runs"]) == 4
    for v, m in r["models"].items():
        assert m["value"] == m["mean"] == pytest.approx(np.mean(m["values"])), v
        assert m["std"] == pytest.approx(np.std(m["values"], ddof=1)), v
    on_disk = json.loads((tmp_path / "race-binary-addition.json").read_text())
    assert on_disk["models"] == json.loads(json.dumps(r["models"]))
    assert all(is_png(f) for f in r["figures"])


def test_race_command_takes_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(binary_addition, "QUICK", {**binary_addition.QUICK, **TINY})
    out = io.StringIO()
    rc = main(["race", "--task", "binary-addition", "--variants", "rnn,gru", "--seeds", "2",
               "--backend", "numpy", "--quick", "--out", str(tmp_path), "--no-progress"], out=out)
    assert rc == 0
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["seeds"] == 2 and result["models"]["gru"]["seeds"] == [0, 1]
    assert len(result["models"]["rnn"]["values"]) == 2


@pytest.mark.parametrize("argv, words", [
    (["--engine", "dask"], "needs scheduler=ADDRESS"),
    (["--scheduler", "tcp://127.0.0.1:1"], "is for engine='dask'"),
    (["--seeds", "0"], "seeds must be a positive int, got 0"),
    (["--jobs", "-2"], "jobs must be a positive int, got -2"),
])
def test_race_command_refuses_bad_options(argv, words, tmp_path, capsys):
    rc = main(["race", "--task", "binary-addition", "--variants", "rnn", "--out", str(tmp_path),
               *argv])
    assert rc == 2
    assert words in capsys.readouterr().err


def test_unknown_task_fails_before_any_run():
    with pytest.raises(ValueError, match="unknown demo 'nope'"):
        race_runs("nope", ["gru"], jobs=2)


def test_noise_race_compares_seeds(tmp_path):
    from minigru.demos import noise_race

    tiny = {"samples": 8, "timesteps": 3, "features": 4, "hidden": 5, "epochs": 2, "batch": 4,
            "heldout": 6, "variants": ["gru", "gru3"], "seeds": 3}
    r = noise_race.run(out=str(tmp_path), backend="numpy", settings=tiny, progress=False)
    for v in ("gru", "gru3"):
        m, alone = r["models"][v], [noise_race.train_variant(v, backend="numpy", seed=s,
                                                             settings=tiny) for s in range(3)]
        assert m["seeds"] == [0, 1, 2]
        assert m["heldout_mse"] == pytest.approx(np.mean([a["heldout"][-1] for a in alone]))
        assert m["heldout_mse_std"] == pytest.approx(np.std([a["heldout"][-1] for a in alone],
                                                            ddof=1))
        assert m["train_loss_std"] > 0
    assert all(is_png(f) for f in r["figures"])
