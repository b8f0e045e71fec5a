"""mgu, mgu1, mgu2, mgu3 in PyTorch, transcribed from VARIANTS.md."""

import torch


def _minimal(gate):
    """gate(x_t, h, p, H) -> f; the candidate and update are mgu's."""
    def fn(p, x, h, *, training, cell, cache):
        H = h.shape[1]
        W_n, U_n, b_n = p["W"][:, -H:], p["U"][:, -H:], p["b"][-H:]
        ys = []
        for x_t in x:
            f = gate(x_t, h, p, H)
            n = torch.tanh(x_t @ W_n + (f * h) @ U_n + b_n)
            h = (1 - f) * h + f * n
            ys.append(h)
        return torch.stack(ys), h
    return fn


def _gate_mgu(x_t, h, p, H):
    return torch.sigmoid(x_t @ p["W"][:, :H] + h @ p["U"][:, :H] + p["b"][:H])


def _gate_1(x_t, h, p, H):
    return torch.sigmoid(h @ p["U"][:, :H] + p["b"][:H])


def _gate_2(x_t, h, p, H):
    return torch.sigmoid(h @ p["U"][:, :H])


def _gate_3(x_t, h, p, H):
    return torch.sigmoid(p["b"][:H])


REFERENCE = {
    "mgu": _minimal(_gate_mgu),
    "mgu1": _minimal(_gate_1),
    "mgu2": _minimal(_gate_2),
    "mgu3": _minimal(_gate_3),
}
