"""ligru in PyTorch, transcribed from VARIANTS.md; the batch norm is torch's own ``batch_norm``."""

import torch
import torch.nn.functional as F


def batch_normed_x(p, x, H, training, cell):
    """BN(x W) over the (T·B) rows, (T, B, 2H): ligru's and libru's x side."""
    T, B, _ = x.shape
    v = (x @ p["W"]).reshape(T * B, 2 * H)
    if training:
        running = (None, None)                        # the batch's own statistics
    else:
        # The parity test hands minigru a copy of the cell's buffers, so these are the
        # running statistics minigru's evaluation forward used.
        running = tuple(torch.tensor(cell.buffers[k], dtype=p["W"].dtype)
                        for k in ("running_mean", "running_var"))
    return F.batch_norm(v, *running, weight=p["gamma"], bias=p["beta"], training=training,
                        eps=1e-5).reshape(T, B, 2 * H)


def ligru(p, x, h, *, training, cell, cache):
    a = batch_normed_x(p, x, h.shape[1], training, cell)
    U_z, U_n = torch.chunk(p["U"], 2, dim=-1)
    ys = []
    for a_t in a:
        a_z, a_n = torch.chunk(a_t, 2, dim=-1)
        z = torch.sigmoid(a_z + h @ U_z)
        n = torch.relu(a_n + h @ U_n)
        h = z * h + (1 - z) * n
        ys.append(h)
    return torch.stack(ys), h


REFERENCE = {"ligru": ligru}
