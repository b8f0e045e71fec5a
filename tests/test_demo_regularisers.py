"""The regularisers demo, tiny: every run trained, the gains computed from them, the figure."""

import json

import numpy as np

from demo_helpers import is_png
from minigru.demos import regularisers as demo

TINY = {"jobs": 1, "hidden_size": 4, "epochs": 2, "batch_size": 64,
        "runs": {"none": {}, "zoneout": {"zoneout": 0.3},
                 "recurrent_dropout": {"recurrent_dropout": 0.3}}}


def test_run_trains_each_regulariser_and_reports_the_gains(tmp_path):
    r = demo.run(out=str(tmp_path), backend="numba", progress=False, settings=TINY)
    assert next(iter(r)) == "demo" and r["demo"] == "regularisers"
    assert set(r["runs"]) == {"none", "zoneout", "recurrent_dropout"}
    none = r["runs"]["none"]
    for name, run in r["runs"].items():
        assert 0 < run["test_nll"] < 88 * np.log(2) + 1, name
        assert run["best_epoch"] in (1, 2)
    assert set(r["test_gain"]) == {"zoneout", "recurrent_dropout"}
    for name, gain in r["test_gain"].items():
        assert gain == none["test_nll"] - r["runs"][name]["test_nll"]
        assert (r["final_valid_gain"][name]
                == none["final_valid_nll"] - r["runs"][name]["final_valid_nll"])
    # a regulariser changes the run: the masks acted
    assert r["runs"]["zoneout"]["final_train_nll"] != none["final_train_nll"]
    assert len(r["figures"]) == 1 and is_png(r["figures"][0])
    json.loads(json.dumps(r))
