"""mingru in PyTorch, transcribed from VARIANTS.md (the sequential form)."""

import torch


def mingru(p, x, h, *, training, cell, cache):
    W_z, W_n = torch.chunk(p["W"], 2, dim=-1)
    b_z, b_n = torch.chunk(p["b"], 2, dim=-1)
    ys = []
    for x_t in x:
        z = torch.sigmoid(x_t @ W_z + b_z)
        n = x_t @ W_n + b_n
        h = (1 - z) * h + z * n
        ys.append(h)
    return torch.stack(ys), h


REFERENCE = {"mingru": mingru}
