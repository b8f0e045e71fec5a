"""gru, lstm and rnn against torch.nn.GRU / nn.LSTM / nn.RNN themselves, through the weight
mapping of VARIANTS.md (``minigru.interop``), in float64."""

import numpy as np
import pytest

import minigru as mg
from minigru.interop import params_from_torch, params_to_torch

torch = pytest.importorskip("torch", reason="PyTorch is the test-time oracle: pip install torch")

MODULES = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}
T, B, I, H = 6, 3, 4, 5


def _np(t):
    return t.detach().numpy()


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("variant", sorted(MODULES))
def test_matches_torch_module(variant, bias):
    torch.manual_seed(0)
    module = MODULES[variant](I, H, bias=bias).double()
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.normal(size=(T, B, I)), requires_grad=True)
    h0 = torch.tensor(rng.normal(size=(1, B, H)), requires_grad=True)
    c0 = torch.tensor(rng.normal(size=(1, B, H)), requires_grad=True)
    R, S, Sc = rng.normal(size=(T, B, H)), rng.normal(size=(B, H)), rng.normal(size=(B, H))

    if variant == "lstm":
        tys, (thT, tcT) = module(x, (h0, c0))
        loss = (tys * torch.tensor(R)).sum() + (thT[0] * torch.tensor(S)).sum() \
            + (tcT[0] * torch.tensor(Sc)).sum()
    else:
        tys, thT = module(x, h0)
        loss = (tys * torch.tensor(R)).sum() + (thT[0] * torch.tensor(S)).sum()
    loss.backward()

    w = {k: _np(getattr(module, f"{k}_l0")) for k in ("weight_ih", "weight_hh")}
    if bias:
        w.update({k: _np(getattr(module, f"{k}_l0")) for k in ("bias_ih", "bias_hh")})
    p = params_from_torch(variant, **w)
    cell = mg.cell(variant, bias=bias)
    assert sorted(p) == sorted(cell.param_shapes(I, H)), f"{variant} bias={bias}: {sorted(p)}"
    state0 = (_np(h0[0]), _np(c0[0])) if variant == "lstm" else _np(h0[0])
    dstate = (S, Sc) if variant == "lstm" else S
    ys, state, cache = cell.forward(p, _np(x), state0)
    dx, dstate0, grads = cell.backward(p, cache, R, dstate)

    label = f"{variant} vs torch.nn.{MODULES[variant].__name__} bias={bias}"
    close = lambda what, a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12,
                                                          err_msg=f"{label} {what}")
    close("ys", ys, _np(tys))
    close("dx", dx, _np(x.grad))
    close("dW", grads["W"], _np(module.weight_ih_l0.grad).T)
    close("dU", grads["U"], _np(module.weight_hh_l0.grad).T)
    if variant == "lstm":
        close("hT", state[0], _np(thT[0]))
        close("cT", state[1], _np(tcT[0]))
        close("dh0", dstate0[0], _np(h0.grad[0]))
        close("dc0", dstate0[1], _np(c0.grad[0]))
    else:
        close("hT", state, _np(thT[0]))
        close("dh0", dstate0, _np(h0.grad[0]))
    if bias:
        # d(bias_ih) is dL/d(x W + b) summed: minigru's db in all three variants
        close("db", grads["b"], _np(module.bias_ih_l0.grad))
        if variant == "gru":
            close("dc", grads["c"], _np(module.bias_hh_l0.grad)[2 * H:])


@pytest.mark.parametrize("variant", sorted(MODULES))
def test_weights_round_trip_through_torch(variant):
    """params_to_torch then loading into the module gives the same outputs as minigru."""
    p = mg.cell(variant).init(I, H, rng=np.random.default_rng(3))
    module = MODULES[variant](I, H).double()
    with torch.no_grad():
        for k, v in params_to_torch(variant, p).items():
            getattr(module, f"{k}_l0").copy_(torch.from_numpy(v))
    x = np.random.default_rng(4).normal(size=(T, B, I))
    ys, _, _ = mg.cell(variant).forward(p, x)
    with torch.no_grad():
        tys = module(torch.from_numpy(x))[0]
    np.testing.assert_allclose(ys, tys.numpy(), rtol=1e-12, atol=1e-14)
    back = params_from_torch(variant, **params_to_torch(variant, p))
    for k in p:
        np.testing.assert_array_equal(back[k], p[k], err_msg=f"{variant} {k} round trip")


def test_mapping_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"weight_hh of gru must have shape \(3·H, H\)"):
        params_from_torch("gru", np.zeros((6, 4)), np.zeros((8, 4)))
    with pytest.raises(ValueError, match="variant must be one of"):
        params_from_torch("mgu", np.zeros((6, 4)), np.zeros((6, 3)))
