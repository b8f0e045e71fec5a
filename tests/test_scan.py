"""scan="parallel": mingru's and minlstm's linear recurrence for every step at once, in log space
(minigru/cells/_scan.py), against the sequential loop it must equal (VARIANTS.md: 1e-10 in
float64, relative to each tensor's largest entry as everywhere in these tests)."""

import numpy as np
import pytest

import minigru as mg
from backend_helpers import check_same_training_step
from minigru.cells._scan import linear_scan, linear_scan_backward

LINEAR = ["mingru", "minlstm"]


def _rel(ours, ref):
    return np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-300)


def _problem(variant, T, B=3, I=4, H=5, seed=0, h0_scale=3.0):
    rng = np.random.default_rng(seed)
    p = mg.cell(variant).init(I, H, rng=rng)
    p = {k: v + rng.normal(0, 1, v.shape) for k, v in p.items()}    # gates far from 1/2 too
    x = 2 * rng.normal(size=(T, B, I))
    h0 = h0_scale * rng.normal(size=(B, H))                          # both signs
    return p, x, h0, rng.normal(size=(T, B, H)), rng.normal(size=(B, H))


@pytest.mark.parametrize("T", [1, 7, 400, 3000])
@pytest.mark.parametrize("variant", LINEAR)
def test_parallel_equals_sequential_forward_and_backward(variant, T):
    p, x, h0, R, S = _problem(variant, T)
    seq, par = mg.cell(variant), mg.cell(variant, scan="parallel")
    cache_p = check_same_training_step(seq, par, p, x, h0, R, S, 1e-10)
    assert cache_p["scan"] == "parallel"


@pytest.mark.parametrize("variant", LINEAR)
def test_parallel_from_the_zero_state_and_in_float32(variant):
    p, x, h0, R, S = _problem(variant, 50, seed=1)
    seq, par = mg.cell(variant), mg.cell(variant, scan="parallel")
    np.testing.assert_allclose(par.forward(p, x)[0], seq.forward(p, x)[0], rtol=1e-10, atol=1e-13)
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    x32, h32 = x.astype(np.float32), h0.astype(np.float32)
    yp, hp, c = par.forward(p32, x32, h32)
    assert yp.dtype == np.float32
    assert _rel(yp, seq.forward(p, x, h0)[0]) < 1e-4
    dx, _, grads = par.backward(p32, c, R.astype(np.float32), S.astype(np.float32))
    assert dx.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())


@pytest.mark.parametrize("variant", LINEAR)
def test_parallel_gradients_by_finite_differences(variant):
    checks = mg.gradcheck(variant, options={"scan": "parallel"}, steps=6)
    assert all(c.ok for c in checks), [(c.tensor, c.error) for c in checks if not c.ok]


def test_the_scan_survives_what_the_products_would_not():
    """Over 2000 steps A_t = Π a reaches 1e-600 (no float64 holds it) and b / A_t 1e600: the log
    form gives the loop's numbers, which stay of the order of b."""
    rng = np.random.default_rng(2)
    T, B, H = 2000, 2, 3
    a = rng.uniform(0.4, 0.6, (T, B, H))
    b = rng.normal(size=(T, B, H))
    h0 = rng.normal(size=(B, H))
    h, hs = h0, []
    for t in range(T):
        h = a[t] * h + b[t]
        hs.append(h)
    assert np.sum(np.log(a[:, 0, 0])) < -1300          # the product underflows
    assert _rel(linear_scan(a, b, h0), np.array(hs)) < 1e-12
    # zeros: a term of b = 0 or h0 = 0 is log 0 = -inf, not a NaN
    b[5:9] = 0
    out = linear_scan(a, b, np.zeros((B, H)))
    assert np.isfinite(out).all()


def test_the_reverse_scan_is_the_backward_loop():
    rng = np.random.default_rng(3)
    T, B, H = 30, 2, 4
    a, hs = rng.uniform(0.1, 0.9, (T, B, H)), rng.normal(size=(T + 1, B, H))
    dys, dh_T = rng.normal(size=(T, B, H)), rng.normal(size=(B, H))
    g, ga, gb = dh_T.copy(), np.empty((T, B, H)), np.empty((T, B, H))
    for t in reversed(range(T)):                       # g_t = dy_t + a_{t+1} g_{t+1}
        g = dys[t] + g
        ga[t], gb[t] = g * hs[t], g
        g = a[t] * g
    da, db, dh0 = linear_scan_backward(a, hs, dys, dh_T)
    assert _rel(da, ga) < 1e-12 and _rel(db, gb) < 1e-12 and _rel(dh0, g) < 1e-12


@pytest.mark.parametrize("variant", LINEAR)
def test_parallel_in_an_rnn_layer(variant):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(9, 3, 4))
    kw = dict(num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    seq = mg.RNN(variant, 4, 5, **kw)
    par = mg.RNN(variant, 4, 5, scan="parallel", **kw)
    lengths = np.array([9, 4, 1])
    ys, state = seq.forward(x, lengths=lengths)
    yp, sp = par.forward(x, lengths=lengths)
    assert _rel(yp, ys) < 1e-10 and _rel(sp, state) < 1e-10
    R = rng.normal(size=ys.shape)
    np.testing.assert_allclose(par.backward(R), seq.backward(R), rtol=1e-9, atol=1e-12)


def test_scan_option_errors():
    with pytest.raises(ValueError, match="scan must be 'sequential' or 'parallel', got 'fast'"):
        mg.cell("mingru", scan="fast")
    with pytest.raises(TypeError, match="gru has no option 'scan'"):
        mg.cell("gru", scan="parallel")
    p, x, h0, _, _ = _problem("mingru", 5)
    with pytest.raises(NotImplementedError, match="zoneout with scan='parallel'"):
        mg.cell("mingru", scan="parallel", zoneout=0.2).forward(p, x, h0)
    with pytest.raises(NotImplementedError, match="zoneout with scan='parallel'"):
        mg.cell("mingru", "numba", scan="parallel", zoneout=0.2).forward(p, x, h0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("T", [1, 2, 3, 5, 257])
@pytest.mark.parametrize("variant", LINEAR)
def test_the_compiled_chunked_scan_equals_the_sequential_reference(variant, T, dtype):
    """numba's scan (one chunk of time per thread, joined: numba/_scan.py) against the NumPy
    sequential loop: outputs, final state and every gradient; also with fewer steps than
    threads. In float32 against numba's own sequential loop in float32, to float32's own
    scatter: over 257 steps its rounding alone moves the recurrence 2e-4 away from float64, and
    the scan forms x W for few inputs itself, rounded otherwise than the library's product."""
    p, x, h0, R, S = _problem(variant, T, seed=T)
    ours = mg.cell(variant, "numba", scan="parallel")
    if dtype == np.float64:
        check_same_training_step(mg.cell(variant), ours, p, x, h0, R, S, 1e-10)
    else:
        c = (lambda a: a.astype(dtype))
        p32 = {k: c(v) for k, v in p.items()}
        check_same_training_step(mg.cell(variant, "numba"), ours, p32, c(x), c(h0), c(R), c(S),
                                 5e-4)


@pytest.mark.parametrize("I", [4, 12], ids=["x W in the kernel", "x W before it"])
@pytest.mark.parametrize("chunks", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("variant", LINEAR)
def test_the_chunked_scan_for_any_number_of_chunks(variant, chunks, I, monkeypatch):
    """The chunks are as many as Numba's threads: two on this project's machine. From three on
    the middle chunks compose their maps and the serial join runs; so it is tested here as if
    there were more threads (``numba.get_num_threads`` told so), over 37 steps, with x W formed
    in the kernels (few inputs, ``FUSE_MAX_INPUTS``) and before them."""
    import numba

    from minigru.numba._scan import FUSE_MAX_INPUTS
    assert (I <= FUSE_MAX_INPUTS) == (I == 4)
    monkeypatch.setattr(numba, "get_num_threads", lambda: chunks)
    p, x, h0, R, S = _problem(variant, 37, I=I, seed=chunks)
    check_same_training_step(mg.cell(variant), mg.cell(variant, "numba", scan="parallel"),
                             p, x, h0, R, S, 1e-12)
