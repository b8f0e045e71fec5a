"""Linear and Embedding: gradients against finite differences and PyTorch, dtypes, accumulation,
and errors that name the argument.

The torch tests call ``_torch()`` (an ``importorskip``), so the others run without PyTorch.
"""

import json

import numpy as np
import pytest

from minigru.gradcheck import numeric_gradient, relative_error
from minigru.layers import Embedding, Linear

TOL = 1e-7                  # centred differences in float64 (see minigru.gradcheck)
ATOL = 1e-12                # against torch in float64


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is the test-time oracle: pip install torch")


def _check_grad(label, analytic, numeric):
    err = relative_error(analytic, numeric)
    assert err < TOL, f"{label}: relative error {err:.2e} > {TOL:.0e}"


# ---------------------------------------------------------------- Linear
@pytest.mark.parametrize("lead", [(), (5,), (4, 3)], ids=["1-D", "(B,)", "(T,B)"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_linear_gradcheck(lead, bias):
    rng = np.random.default_rng(0)
    lin = Linear(3, 4, bias=bias, dtype=np.float64, seed=1)
    x = rng.normal(size=lead + (3,))
    R = rng.normal(size=lead + (4,))                          # L = sum(y * R), so dL/dy = R

    lin.forward(x)
    dx = lin.backward(R)
    f = lambda: float(np.sum(lin.forward(x) * R))
    assert set(lin.grads) == ({"W", "b"} if bias else {"W"})
    for k in lin.params:
        _check_grad(f"Linear d{k}", lin.grads[k], numeric_gradient(f, lin.params[k]))
    _check_grad("Linear dx", dx, numeric_gradient(f, x))


def test_linear_init_like_torch():
    lin = Linear(64, 500, seed=0)
    k = 1 / np.sqrt(64)
    assert lin.params["W"].shape == (64, 500) and lin.params["b"].shape == (500,)
    for name, p in lin.params.items():
        assert p.dtype == np.float32, name
        assert np.all(np.abs(p) <= k), f"{name} outside U(-1/sqrt(in), 1/sqrt(in))"
    assert abs(np.abs(lin.params["W"]).max() - k) < 0.01 * k   # fills the interval
    assert abs(lin.params["W"].mean()) < 0.01 * k


def test_linear_config_rebuilds_it():
    lin = Linear(3, 2, bias=False, dtype=np.float64, seed=7)
    cfg = json.loads(json.dumps(lin.config()))
    assert cfg == {"in_features": 3, "out_features": 2, "bias": False, "dtype": "float64",
                   "seed": 7}
    again = Linear(**cfg)
    np.testing.assert_array_equal(again.params["W"], lin.params["W"])


def test_linear_float32_stays_float32():
    lin = Linear(3, 4, seed=0)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    y = lin.forward(x)
    dx = lin.backward(np.ones_like(y))
    for label, a in [("y", y), ("dx", dx), ("dW", lin.grads["W"]), ("db", lin.grads["b"])]:
        assert a.dtype == np.float32, f"{label} is {a.dtype}"
    assert y.shape == (2, 5, 4) and dx.shape == x.shape


@pytest.mark.parametrize("make", [
    lambda: (Linear(3, 4, dtype=np.float64, seed=0), np.random.default_rng(1).normal(size=(5, 3))),
    lambda: (Embedding(6, 4, dtype=np.float64, seed=0), np.array([[1, 2, 1], [5, 1, 0]])),
], ids=["Linear", "Embedding"])
def test_backward_accumulates_and_zero_grad_resets(make):
    module, x = make()
    y = module.forward(x)
    dy = np.random.default_rng(2).normal(size=y.shape)
    module.backward(dy)
    once = {k: g.copy() for k, g in module.grads.items()}
    arrays = {k: g for k, g in module.grads.items()}
    params = {k: p.copy() for k, p in module.params.items()}
    module.backward(dy)
    for k, g in module.grads.items():
        assert g is arrays[k], f"grads[{k!r}] was rebound"
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-15, err_msg=f"d{k} after two calls")
        np.testing.assert_array_equal(module.params[k], params[k], err_msg=f"{k} was changed")
    module.zero_grad()
    for k, g in module.grads.items():
        assert g is arrays[k] and not g.any(), f"grads[{k!r}] not reset in place"


@pytest.mark.parametrize("args, error, match", [
    ((0, 4), ValueError, "in_features must be a positive int, got 0"),
    ((3, 2.5), TypeError, "out_features must be a positive int, got float 2.5"),
    ((3, 4, "yes"), TypeError, "bias must be True or False, got str 'yes'"),
    ((3, 4, True, np.int32), TypeError, "dtype must be float32 or float64, got int32"),
])
def test_linear_bad_constructor(args, error, match):
    with pytest.raises(error, match=match):
        Linear(*args)


def test_linear_bad_inputs():
    lin = Linear(3, 4, seed=0)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        lin.backward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., in_features\) = "
                                         r"\(\?, 3\), got \(2, 5\)"):
        lin.forward(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., in_features\)"):
        lin.forward(np.zeros((), np.float32))
    with pytest.raises(TypeError, match="x has dtype float64 but the parameters are float32"):
        lin.forward(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="x must be a float32 or float64 array, got dtype int64"):
        lin.forward(np.zeros((2, 3), np.int64))
    with pytest.raises(TypeError, match="x must be a numpy.ndarray, got list"):
        lin.forward([[0.0, 0.0, 0.0]])
    lin.forward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"dy must have shape \(\.\.\., out_features\) = "
                                         r"\(2, 4\), got \(2, 3\)"):
        lin.backward(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="dy has dtype float64 but the parameters are float32"):
        lin.backward(np.zeros((2, 4)))


# ---------------------------------------------------------------- Embedding
def test_embedding_gradcheck_with_repeated_indices():
    rng = np.random.default_rng(0)
    emb = Embedding(5, 3, dtype=np.float64, seed=0)
    idx = np.array([[1, 2, 1], [4, 1, 0]])                   # 1 three times, 3 never
    R = rng.normal(size=(2, 3, 3))
    y = emb.forward(idx)
    assert y.shape == (2, 3, 3)
    assert emb.backward(R) is None
    f = lambda: float(np.sum(emb.forward(idx) * R))
    _check_grad("Embedding dE", emb.grads["E"], numeric_gradient(f, emb.params["E"]))
    np.testing.assert_allclose(emb.grads["E"][1], R[0, 0] + R[0, 2] + R[1, 1], rtol=1e-15)
    assert not emb.grads["E"][3].any(), "an unused row got a gradient"


def test_embedding_forward_is_a_copy_and_keeps_any_shape():
    emb = Embedding(4, 2, seed=0)
    for idx in [np.array(3), np.array([0, 3]), np.zeros((2, 3, 1), np.uint8)]:
        y = emb.forward(idx)
        assert y.shape == idx.shape + (2,) and y.dtype == np.float32
    y[...] = 99
    assert not (emb.params["E"] == 99).any(), "forward returned a view of E"


def test_embedding_init_like_torch():
    emb = Embedding(1000, 50, seed=0)
    E = emb.params["E"]
    assert E.shape == (1000, 50) and E.dtype == np.float32
    assert abs(E.mean()) < 0.01 and abs(E.std() - 1) < 0.01, "E is not drawn from N(0, 1)"


def test_embedding_config_rebuilds_it():
    emb = Embedding(7, 3, dtype=np.float64, seed=3)
    again = Embedding(**json.loads(json.dumps(emb.config())))
    np.testing.assert_array_equal(again.params["E"], emb.params["E"])


def test_embedding_bad_inputs():
    emb = Embedding(10, 4, seed=0)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        emb.backward(np.zeros((2, 4), np.float32))
    with pytest.raises(TypeError, match="idx must be an integer array, got dtype float64"):
        emb.forward(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="idx must be an integer array, got dtype bool"):
        emb.forward(np.array([True]))
    with pytest.raises(TypeError, match="idx must be a numpy.ndarray of integers, got list"):
        emb.forward([1, 2])
    with pytest.raises(ValueError, match=r"idx must be in \[0, 9\] \(num_embeddings=10\), "
                                         r"got idx\[1, 2\] = 10 \(1 of 6 entries out of range\)"):
        emb.forward(np.array([[0, 1, 2], [3, 4, 10]]))
    with pytest.raises(ValueError, match=r"got idx\[0\] = -1"):
        emb.forward(np.array([-1, 3]))
    emb.forward(np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match=r"dy must be 3-D \(\.\.\., embedding_dim\) = "
                                         r"\(1, 3, 4\), got shape \(3, 4\)"):
        emb.backward(np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="dy has dtype float64 but the parameters are float32"):
        emb.backward(np.zeros((1, 3, 4)))
    with pytest.raises(ValueError, match="embedding_dim must be a positive int, got 0"):
        Embedding(10, 0)


# ---------------------------------------------------------------- against PyTorch
def _close(label, ours, theirs):
    theirs = theirs.detach().numpy()
    assert ours.dtype == theirs.dtype, f"{label}: dtype {ours.dtype}, torch {theirs.dtype}"
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=ATOL, err_msg=label)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_linear_matches_torch(bias):
    torch = _torch()
    torch.manual_seed(0)
    ref = torch.nn.Linear(5, 3, bias=bias, dtype=torch.float64)
    lin = Linear.from_torch(ref)
    np.testing.assert_array_equal(lin.params["W"], ref.weight.detach().numpy().T)   # W = weight.T
    rng = np.random.default_rng(0)
    x, R = rng.normal(size=(4, 2, 5)), rng.normal(size=(4, 2, 3))

    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    (yt * torch.tensor(R)).sum().backward()
    y = lin.forward(x)
    dx = lin.backward(R)

    _close("y", y, yt)
    _close("dx", dx, xt.grad)
    _close("dW", lin.grads["W"], ref.weight.grad.T)
    if bias:
        _close("db", lin.grads["b"], ref.bias.grad)


def test_linear_to_torch_round_trip():
    torch = _torch()
    for dtype in (np.float32, np.float64):
        lin = Linear(4, 2, dtype=dtype, seed=0)
        m = lin.to_torch()
        assert m.weight.dtype == getattr(torch, np.dtype(dtype).name)
        x = np.ones((3, 4), dtype)
        # the same weights; the products may add in another order (OpenBLAS's kernels against
        # oneDNN's differ by CPU), so equal to rounding, and the weights bit for bit
        np.testing.assert_allclose(lin.forward(x), m(torch.from_numpy(x)).detach().numpy(),
                                   rtol=4 * np.finfo(dtype).eps, atol=0)
        back = Linear.from_torch(m)
        assert back.dtype == dtype
        np.testing.assert_array_equal(back.params["W"], lin.params["W"])


def test_embedding_matches_torch():
    torch = _torch()
    torch.manual_seed(0)
    ref = torch.nn.Embedding(6, 3, dtype=torch.float64)
    emb = Embedding.from_torch(ref)
    idx = np.array([[1, 2, 1], [5, 1, 0]])
    R = np.random.default_rng(0).normal(size=(2, 3, 3))

    yt = ref(torch.from_numpy(idx))
    (yt * torch.tensor(R)).sum().backward()
    y = emb.forward(idx)
    emb.backward(R)

    _close("y", y, yt)
    _close("dE", emb.grads["E"], ref.weight.grad)
    np.testing.assert_array_equal(emb.to_torch().weight.detach().numpy(), emb.params["E"])


def test_embedding_from_torch_rejects_what_it_lacks():
    torch = _torch()
    with pytest.raises(ValueError, match="padding_idx=0 is not supported"):
        Embedding.from_torch(torch.nn.Embedding(5, 2, padding_idx=0))
    with pytest.raises(TypeError, match="module.weight must be float32 or float64, "
                                        "got torch.float16"):
        Embedding.from_torch(torch.nn.Embedding(5, 2, dtype=torch.float16))
