"""gru, gru_v3, gru1, gru2, gru3 in PyTorch, transcribed from VARIANTS.md."""

import torch


def _blocks(a, n):
    return torch.chunk(a, n, dim=-1)


def gru(p, x, h, *, training, cell, cache):
    W_r, W_z, W_n = _blocks(p["W"], 3)
    U_r, U_z, U_n = _blocks(p["U"], 3)
    b_r, b_z, b_n = _blocks(p["b"], 3)
    ys = []
    for x_t in x:
        r = torch.sigmoid(x_t @ W_r + h @ U_r + b_r)
        z = torch.sigmoid(x_t @ W_z + h @ U_z + b_z)
        n = torch.tanh(x_t @ W_n + b_n + r * (h @ U_n + p["c"]))
        h = z * h + (1 - z) * n
        ys.append(h)
    return torch.stack(ys), h


def _reset_before(gates):
    """gates(x_t, h, p) -> (r, z); the candidate and update are gru_v3's."""
    def fn(p, x, h, *, training, cell, cache):
        H = h.shape[1]
        W_n, U_n, b_n = p["W"][:, -H:], p["U"][:, -H:], p["b"][-H:]
        ys = []
        for x_t in x:
            r, z = gates(x_t, h, p, H)
            n = torch.tanh(x_t @ W_n + (r * h) @ U_n + b_n)
            h = z * h + (1 - z) * n
            ys.append(h)
        return torch.stack(ys), h
    return fn


def _gates_v3(x_t, h, p, H):
    a = x_t @ p["W"][:, :2 * H] + h @ p["U"][:, :2 * H] + p["b"][:2 * H]
    return torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:])


def _gates_1(x_t, h, p, H):
    a = h @ p["U"][:, :2 * H] + p["b"][:2 * H]
    return torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:])


def _gates_2(x_t, h, p, H):
    a = h @ p["U"][:, :2 * H]
    return torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:])


def _gates_3(x_t, h, p, H):
    a = p["b"][:2 * H]
    return torch.sigmoid(a[:H]), torch.sigmoid(a[H:])


REFERENCE = {
    "gru": gru,
    "gru_v3": _reset_before(_gates_v3),
    "gru1": _reset_before(_gates_1),
    "gru2": _reset_before(_gates_2),
    "gru3": _reset_before(_gates_3),
}
