"""rru in PyTorch, transcribed from VARIANTS.md.

The dropout mask is the one random thing: it is read from minigru's cache (``cache["mask"]``,
keep / (1 − rate)) and only which units were kept is taken from it; the scaling is torch's.
"""

import torch


def rru(p, x, h, *, training, cell, cache):
    H = h.shape[1]
    rate = cell.options["dropout"]
    residual = torch.sigmoid(10 * p["s"])
    ys = []
    for t, x_t in enumerate(x):
        u = torch.cat([x_t, h], dim=1)
        v = u @ p["J"] + p["j"]
        a = torch.relu(v / torch.sqrt(v.pow(2).mean(dim=1, keepdim=True) + 1e-6))
        if training and rate > 0:
            keep = torch.from_numpy(cache["mask"][t] != 0)
            a = torch.where(keep, a / (1 - rate), torch.zeros_like(a))
        co = a @ p["V"] + p["v"]
        c, o = co[:, :H], co[:, H:]
        h = h * residual + c * p["Z"]
        ys.append(o)
    return torch.stack(ys), h


REFERENCE = {"rru": rru}
