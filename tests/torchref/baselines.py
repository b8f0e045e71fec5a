"""rnn and lstm in PyTorch, transcribed from VARIANTS.md."""

import torch


def rnn(p, x, h, *, training, cell, cache):
    ys = []
    for x_t in x:
        h = torch.tanh(x_t @ p["W"] + h @ p["U"] + p["b"])
        ys.append(h)
    return torch.stack(ys), h


def lstm(p, x, state, *, training, cell, cache):
    h, c = state
    ys = []
    for x_t in x:
        a_i, a_f, a_g, a_o = torch.chunk(x_t @ p["W"] + h @ p["U"] + p["b"], 4, dim=-1)
        i, f, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.sigmoid(a_o)
        g = torch.tanh(a_g)
        c = f * c + i * g
        h = o * torch.tanh(c)
        ys.append(h)
    return torch.stack(ys), (h, c)


REFERENCE = {"rnn": rnn, "lstm": lstm}
