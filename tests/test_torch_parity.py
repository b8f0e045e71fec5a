"""Agreement with PyTorch autograd, in float64, for every variant.

Each variant's forward is transcribed into torch in ``tests/torchref`` from VARIANTS.md; torch's
autograd then gives every gradient of ``L = sum(ys * R) + sum(state_T * S)``, which must equal
minigru's hand-written backward.
"""

import numpy as np
import pytest

import minigru as mg
from minigru.gradcheck import random_problem

torch = pytest.importorskip("torch", reason="PyTorch is the test-time oracle: pip install torch")

from torchref import REFERENCE  # noqa: E402  (needs torch)

RTOL, ATOL = 1e-10, 1e-12
RTOL32 = 1e-4


def _t(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def _as_tuple(s):
    return s if isinstance(s, tuple) else (s,)


def _close(label, ours, theirs, dtype=np.float64):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert ours.dtype == dtype, f"{label}: dtype {ours.dtype}, expected {np.dtype(dtype)}"
    if dtype == np.float64:
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=label)
    else:  # float32 rounding, relative to the tensor's scale (API.md: 1e-4 relative)
        scale = np.max(np.abs(theirs))
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=RTOL32 * scale, err_msg=label)


def torch_check(variant, training=True, options=None, seed=0, zero_state=False,
                dtype=np.float64, **sizes):
    """Run minigru (in ``dtype``) and the float64 torch reference on one random problem and
    compare outputs, final state and every gradient."""
    cell, p, x, state0, R, S = random_problem(variant, seed=seed, options=options, **sizes)
    if zero_state:
        state0 = tuple(np.zeros_like(s) for s in state0) if isinstance(state0, tuple) \
            else np.zeros_like(state0)
    c = (lambda a: tuple(map(c, a)) if isinstance(a, tuple) else a.astype(dtype))
    buffers = None if cell.buffers is None else {k: c(v) for k, v in cell.buffers.items()}
    ys, state, cache = cell.forward({k: c(v) for k, v in p.items()}, c(x), c(state0), training,
                                    buffers=buffers)
    dx, dstate0, grads = cell.backward({k: c(v) for k, v in p.items()}, cache, c(R), c(S))

    tp = {k: _t(v) for k, v in p.items()}
    tx = _t(x)
    ts0 = tuple(_t(s) for s in _as_tuple(state0))
    t_state0 = ts0 if len(ts0) > 1 else ts0[0]
    tys, tstate = REFERENCE[variant](tp, tx, t_state0, training=training, cell=cell, cache=cache)
    loss = (tys * torch.from_numpy(R)).sum()
    for s, w in zip(_as_tuple(tstate), _as_tuple(S)):
        loss = loss + (s * torch.from_numpy(w)).sum()
    loss.backward()

    label = f"{variant} {np.dtype(dtype).name} training={training} {options or ''}"
    close = (lambda what, ours, theirs: _close(f"{label} {what}", ours, theirs, dtype))
    close("ys", ys, tys)
    for i, (s, ts) in enumerate(zip(_as_tuple(state), _as_tuple(tstate))):
        close(f"final state[{i}]", s, ts)
    close("dx", dx, tx.grad)
    for name, d, ts in zip(("dh0", "dc0"), _as_tuple(dstate0), ts0):
        close(name, d, ts.grad)
    for k in p:
        close(f"d{k}", grads[k], tp[k].grad)
    return cell, cache


@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_matches_torch_autograd(variant):
    torch_check(variant, steps=7, batch=3, input_size=5, hidden_size=6)


@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_matches_torch_autograd_in_evaluation_mode(variant):
    torch_check(variant, training=False, seed=2)


@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_matches_torch_autograd_from_the_zero_state(variant):
    """The default state; for lngru the sharpest case: LN(h U = 0) has 1/std = 1/sqrt(eps)."""
    torch_check(variant, zero_state=True, seed=3)


@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_float32_matches_torch_float64_autograd(variant):
    """float32 arithmetic, at float32 tolerance, against the float64 oracle."""
    torch_check(variant, dtype=np.float32, steps=7, batch=3, input_size=5, hidden_size=6)


def test_every_variant_has_a_reference():
    assert set(REFERENCE) == set(mg.VARIANTS)
