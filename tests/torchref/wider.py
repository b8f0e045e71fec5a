"""The wider family (minlstm, indrnn, janet, sru, libru, slstm) in PyTorch, from VARIANTS.md.

Each is the sequential form written straight from the equations; libru's batch norm is ligru's
(torch's own ``batch_norm``, running statistics from the cell's buffers in evaluation mode).
Its softplus is ``logaddexp(v, 0)``, not ``F.softplus``, which returns ``v`` itself above 20.
"""

import torch
import torch.nn.functional as F

from .ligru import batch_normed_x


def minlstm(p, x, h, *, training, cell, cache):
    W_f, W_i, W_n = torch.chunk(p["W"], 3, dim=-1)
    b_f, b_i, b_n = torch.chunk(p["b"], 3, dim=-1)
    ys = []
    for x_t in x:
        f = torch.sigmoid(x_t @ W_f + b_f)
        i = torch.sigmoid(x_t @ W_i + b_i)
        n = x_t @ W_n + b_n
        h = f / (f + i) * h + i / (f + i) * n
        ys.append(h)
    return torch.stack(ys), h


def indrnn(p, x, h, *, training, cell, cache):
    ys = []
    for x_t in x:
        h = torch.relu(x_t @ p["W"] + p["u"] * h + p["b"])
        ys.append(h)
    return torch.stack(ys), h


def janet(p, x, h, *, training, cell, cache):
    beta = cell.options["beta"]
    W_f, W_n = torch.chunk(p["W"], 2, dim=-1)
    U_f, U_n = torch.chunk(p["U"], 2, dim=-1)
    b_f, b_n = torch.chunk(p["b"], 2, dim=-1)
    ys = []
    for x_t in x:
        s = x_t @ W_f + h @ U_f + b_f
        n = torch.tanh(x_t @ W_n + h @ U_n + b_n)
        h = torch.sigmoid(s) * h + (1 - torch.sigmoid(s - beta)) * n
        ys.append(h)
    return torch.stack(ys), h


def sru(p, x, c, *, training, cell, cache):
    v_f, v_r = torch.chunk(p["v"], 2, dim=-1)
    b_f, b_r = torch.chunk(p["b"], 2, dim=-1)
    ys = []
    for x_t in x:
        n, a_f, a_r, s = torch.chunk(x_t @ p["W"], 4, dim=-1)
        f = torch.sigmoid(a_f + v_f * c + b_f)
        r = torch.sigmoid(a_r + v_r * c + b_r)
        c = f * c + (1 - f) * n
        ys.append(r * c + (1 - r) * s)
    return torch.stack(ys), c


def libru(p, x, h, *, training, cell, cache):
    a = batch_normed_x(p, x, h.shape[1], training, cell)       # ligru's x side
    U_z, U_n = torch.chunk(p["U"], 2, dim=-1)
    ys = []
    for a_t in a:
        a_z, a_n = torch.chunk(a_t, 2, dim=-1)
        s = a_z + h @ U_z
        n = torch.logaddexp(a_n + h @ U_n, torch.zeros_like(h))   # softplus, exact for all v
        h = torch.logaddexp(h + F.logsigmoid(s), n + F.logsigmoid(-s))
        ys.append(h)
    return torch.stack(ys), h


def slstm(p, x, state, *, training, cell, cache):
    h, c, n, m = state
    ys = []
    for x_t in x:
        i_t, f_t, z_t, o_t = torch.chunk(x_t @ p["W"] + h @ p["U"] + p["b"], 4, dim=-1)
        lf = F.logsigmoid(f_t)
        m_new = torch.where(lf + m > i_t, lf + m, i_t)   # max; its gradient to the one chosen
        i = torch.exp(i_t - m_new)
        f = torch.exp(lf + m - m_new)
        c = f * c + i * torch.tanh(z_t)
        n = f * n + i
        h = torch.sigmoid(o_t) * c / n
        m = m_new
        ys.append(h)
    return torch.stack(ys), (h, c, n, m)


REFERENCE = {"minlstm": minlstm, "indrnn": indrnn, "janet": janet, "sru": sru, "libru": libru,
             "slstm": slstm}
