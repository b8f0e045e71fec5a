"""lngru in PyTorch, transcribed from VARIANTS.md."""

import torch


def _ln(v, g):
    """g ⊙ (v − mean(v)) / sqrt(var(v) + 1e-5) over the last axis, biased variance."""
    mu = v.mean(dim=-1, keepdim=True)
    var = ((v - mu) ** 2).mean(dim=-1, keepdim=True)
    return g * (v - mu) / torch.sqrt(var + 1e-5)


def lngru(p, x, h, *, training, cell, cache):
    a = _ln(x @ p["W"], p["g_x"]) + p["b"]
    ys = []
    for a_t in a:
        u = _ln(h @ p["U"], p["g_h"]) + p["c"]
        a_r, a_z, a_n = torch.chunk(a_t, 3, dim=-1)
        u_r, u_z, u_n = torch.chunk(u, 3, dim=-1)
        r = torch.sigmoid(a_r + u_r)
        z = torch.sigmoid(a_z + u_z)
        n = torch.tanh(a_n + r * u_n)
        h = z * h + (1 - z) * n
        ys.append(h)
    return torch.stack(ys), h


REFERENCE = {"lngru": lngru}
