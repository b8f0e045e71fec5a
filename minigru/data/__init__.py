"""The data sets that ship with minigru, so that its demos run offline.

    kjv()        the first six books of the King James Bible (Genesis to Joshua), one str
    chorales()   348 four-part Bach chorales as 88-key piano rolls, split by piece

Where each file comes from, its licence and how to remake it: ``README.md`` in this folder.
"""

from importlib import resources

import numpy as np

SPLITS = ("train", "valid", "test")


def _path(name):
    return resources.files(__name__).joinpath(name)


def kjv():
    """The text of ``kjv.txt`` (936 KB, 72 distinct characters): Genesis to Joshua, KJV 1611."""
    return _path("kjv.txt").read_text(encoding="utf-8")


def chorales():
    """``{"train": [...], "valid": [...], "test": [...], "names": {...}, "step_quarters": 0.5,
    "lowest_midi": 21}``: each split a list of (T, 88) bool piano rolls (T steps of an eighth
    note; key k is MIDI pitch 21 + k), ``names`` the BWV numbers of each split's pieces."""
    with _path("chorales.npz").open("rb") as f, np.load(f, allow_pickle=False) as d:
        keys = np.unpackbits(d["rolls"], axis=1, count=88).astype(bool)   # (sum T, 88)
        pieces = np.split(keys, np.cumsum(d["lengths"])[:-1])
        split, names = d["split"], d["names"]
        out = {s: [pieces[i] for i in np.flatnonzero(split == k)] for k, s in enumerate(SPLITS)}
        out["names"] = {s: [str(names[i]) for i in np.flatnonzero(split == k)]
                        for k, s in enumerate(SPLITS)}
        out["step_quarters"] = float(d["step_quarters"])
        out["lowest_midi"] = int(d["lowest_midi"])
    return out
