"""Losses: gradients against finite differences and PyTorch, stability at extreme logits, dtypes,
masking, and errors that name the argument.

The torch tests call ``_torch()`` (an ``importorskip``), so the others run without PyTorch.
"""

import warnings

import numpy as np
import pytest

from minigru import losses
from minigru.gradcheck import numeric_gradient, relative_error

TOL = 1e-7                  # centred differences in float64 (see minigru.gradcheck)
ATOL = 1e-12                # against torch in float64
REDUCTIONS = ("mean", "sum")


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is the test-time oracle: pip install torch")


def problem(name, shape=(4, 3), C=5, dtype=np.float64, seed=0):
    """``(first argument, other keyword arguments)`` of loss ``name``; ``shape`` = the leading dims.

    The mask of ``"ce_masked"`` drops some entries and gives them targets a real class could not
    have (-100, torch's ignore_index), which must then never be looked at.
    """
    rng = np.random.default_rng(seed)
    if name == "mse":
        pred, target = rng.normal(size=(2,) + shape).astype(dtype)
        return pred, {"target": target}
    if name == "bce":
        logits, target = (2 * rng.normal(size=shape)).astype(dtype), rng.uniform(size=shape)
        return logits, {"target": target.astype(dtype)}
    logits = (2 * rng.normal(size=shape + (C,))).astype(dtype)
    target = rng.integers(0, C, size=shape)
    if name == "ce":
        return logits, {"target": target}
    mask = rng.uniform(size=shape) < 0.6
    mask.flat[0] = True
    return logits, {"target": np.where(mask, target, -100), "mask": mask}


FUNCTIONS = {"mse": losses.mse, "bce": losses.bce_with_logits, "ce": losses.cross_entropy,
             "ce_masked": losses.cross_entropy}


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6,), (4, 3)], ids=["(B,)", "(T,B)"])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_gradcheck(name, shape, reduction):
    a, kw = problem(name, shape)
    fn = FUNCTIONS[name]
    loss, grad = fn(a, **kw, reduction=reduction)
    assert grad.shape == a.shape and grad.dtype == a.dtype
    numeric = numeric_gradient(lambda: float(fn(a, **kw, reduction=reduction)[0]), a)
    err = relative_error(grad, numeric)
    assert err < TOL, f"{name} {reduction} {shape}: relative error {err:.2e} > {TOL:.0e}"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_mean_is_sum_over_count(name):
    a, kw = problem(name)
    total, gsum = FUNCTIONS[name](a, **kw, reduction="sum")
    mean, gmean = FUNCTIONS[name](a, **kw)
    count = np.count_nonzero(kw["mask"]) if "mask" in kw else kw["target"].size
    np.testing.assert_allclose(mean, total / count, rtol=1e-14)
    np.testing.assert_allclose(gmean, gsum / count, rtol=1e-14)


def test_cross_entropy_values():
    logits = np.log(np.array([[1.0, 2.0, 1.0], [1.0, 1.0, 2.0]]))     # softmax = (1, 2, 1) / 4
    loss, grad = losses.cross_entropy(logits, np.array([1, 0]))
    np.testing.assert_allclose(loss, (-np.log(0.5) - np.log(0.25)) / 2, rtol=1e-15)
    np.testing.assert_allclose(grad, np.array([[0.25, -0.5, 0.25], [-0.75, 0.25, 0.5]]) / 2,
                               rtol=1e-15)       # (softmax - onehot) / count


def test_mask_leaves_out_padding():
    logits, kw = problem("ce_masked", (5, 2))
    logits[~kw["mask"]] = np.nan                    # padded steps may hold anything at all
    loss, grad = losses.cross_entropy(logits, **kw)
    kept, _ = losses.cross_entropy(logits[kw["mask"]], kw["target"][kw["mask"]])
    np.testing.assert_allclose(loss, kept, rtol=1e-15)
    assert np.isfinite(grad).all() and not grad[~kw["mask"]].any()
    for as_numbers in (kw["mask"].astype(np.float32), kw["mask"].astype(np.int8)):
        again, grad2 = losses.cross_entropy(logits, kw["target"], mask=as_numbers)
        assert again == loss and np.array_equal(grad2, grad)


def test_softmax_helpers():
    z = np.random.default_rng(0).normal(size=(3, 4, 5))
    p = losses.softmax(z)
    np.testing.assert_allclose(p.sum(axis=-1), 1, rtol=1e-15)
    np.testing.assert_allclose(losses.log_softmax(z), np.log(p), rtol=1e-14)
    np.testing.assert_allclose(losses.softmax(z, axis=0).sum(axis=0), 1, rtol=1e-15)
    np.testing.assert_allclose(losses.sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-15)


# ---------------------------------------------------------------- stability and dtypes
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_are_finite_without_warnings(dtype):
    z = np.array([[1000, -1000, 0], [-1000, -1000, 1000], [1000, 1000, -1000]], dtype)
    y = np.array([1, 0, 2])
    t = np.array([[0, 1, 0.5], [1, 0, 0], [1, 0, 1]], dtype)
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        ce, dce = losses.cross_entropy(z, y, reduction="sum")
        bce, dbce = losses.bce_with_logits(z, t, reduction="sum")
        p, logp, s = losses.softmax(z), losses.log_softmax(z), losses.sigmoid(z)
    np.testing.assert_allclose(ce, 2000 + 2000 + 2000 + np.log(2), rtol=1e-6)
    np.testing.assert_allclose(dce[0], [1, -1, 0], atol=1e-6)
    # bce: 0 where the logit agrees with its 0/1 target, 1000 where it disagrees, log 2 at x = 0
    np.testing.assert_allclose(bce, 6 * 1000 + np.log(2), rtol=1e-6)
    for label, a in [("ce", ce), ("dce", dce), ("bce", bce), ("dbce", dbce), ("softmax", p),
                     ("log_softmax", logp), ("sigmoid", s)]:
        assert np.all(np.isfinite(a)), f"{label} not finite at logits of ±1000"
        assert a.dtype == dtype, f"{label} is {a.dtype}, expected {np.dtype(dtype)}"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_float32_stays_float32(name):
    a64, kw64 = problem(name)
    a32 = a64.astype(np.float32)
    kw32 = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in kw64.items()}
    loss, grad = FUNCTIONS[name](a32, **kw32)
    assert loss.dtype == np.float32 and grad.dtype == np.float32, (loss.dtype, grad.dtype)
    ref, gref = FUNCTIONS[name](a32.astype(np.float64), **{
        k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in kw32.items()})
    np.testing.assert_allclose(loss, ref, rtol=1e-6)
    np.testing.assert_allclose(grad, gref, rtol=0, atol=1e-6 * np.abs(gref).max())


# ---------------------------------------------------------------- errors
F32 = np.zeros(4, np.float32)
L2 = np.zeros((4, 3))
BAD_IDS = ["mse-broadcast", "mse-dtype-mismatch", "mse-int-pred", "mse-list", "mse-reduction",
           "mse-empty", "bce-broadcast", "bce-target-range", "ce-float-target", "ce-target-shape",
           "ce-class-too-big", "ce-class-negative", "ce-int-logits", "ce-0d-logits",
           "ce-all-masked", "ce-mask-shape", "ce-mask-half", "ce-mask-list", "ce-reduction"]


@pytest.mark.parametrize("call, error, match", [
    (lambda: losses.mse(np.zeros((4, 1)), np.zeros(4)), ValueError,
     r"target must have the shape of pred \(4, 1\), got \(4,\) \(nothing is broadcast\)"),
    (lambda: losses.mse(F32, np.zeros(4)), TypeError,
     "target has dtype float64 but pred is float32"),
    (lambda: losses.mse(np.zeros(4, int), np.zeros(4, int)), TypeError,
     "pred must be a float32 or float64 array, got dtype int64"),
    (lambda: losses.mse([0.0], [0.0]), TypeError, "pred must be a numpy.ndarray, got list"),
    (lambda: losses.mse(F32, F32, reduction="none"), ValueError,
     r"reduction must be one of \('mean', 'sum'\), got 'none'"),
    (lambda: losses.mse(np.zeros(0), np.zeros(0)), ValueError, r"pred is empty \(shape \(0,\)\)"),
    (lambda: losses.bce_with_logits(np.zeros((4, 1)), np.zeros(4)), ValueError,
     r"target must have the shape of logits \(4, 1\), got \(4,\)"),
    (lambda: losses.bce_with_logits(np.zeros(2), np.array([0.0, 2.0])), ValueError,
     r"target must be in \[0, 1\], got 2.0"),
    (lambda: losses.cross_entropy(L2, np.zeros(4)), TypeError,
     "target must be an integer array of class indices, got dtype float64"),
    (lambda: losses.cross_entropy(L2, np.zeros((4, 1), int)), ValueError,
     r"target must have shape logits.shape\[:-1\] = \(4,\) \(logits \(4, 3\)\), got \(4, 1\)"),
    (lambda: losses.cross_entropy(L2, np.array([0, 1, 3, 2])), ValueError,
     r"target must hold class indices in \[0, 2\] \(C = 3\), got target\[2\] = 3"),
    (lambda: losses.cross_entropy(L2, np.array([0, -1, 0, 0])), ValueError,
     r"got target\[1\] = -1"),
    (lambda: losses.cross_entropy(np.zeros((4, 3), int), np.zeros(4, int)), TypeError,
     "logits must be a float32 or float64 array, got dtype int64"),
    (lambda: losses.cross_entropy(np.zeros(()), np.zeros((), int)), ValueError,
     r"logits must have shape \(\.\.\., C\), got a 0-d array"),
    (lambda: losses.cross_entropy(L2, np.zeros(4, int), mask=np.zeros(4, bool)), ValueError,
     "every entry is masked"),
    (lambda: losses.cross_entropy(L2, np.zeros(4, int), mask=np.ones(3, bool)), ValueError,
     r"mask must have shape logits.shape\[:-1\] = \(4,\), got \(3,\)"),
    (lambda: losses.cross_entropy(L2, np.zeros(4, int), mask=np.full(4, 0.5)), ValueError,
     "mask must hold only 0 and 1 \\(or be bool\\), got 0.5"),
    (lambda: losses.cross_entropy(L2, np.zeros(4, int), mask=[1, 1, 1, 1]), TypeError,
     "mask must be a numpy.ndarray"),
    (lambda: losses.cross_entropy(L2, np.zeros(4, int), reduction="max"), ValueError,
     r"reduction must be one of \('mean', 'sum'\), got 'max'"),
], ids=BAD_IDS)
def test_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_all_masked_sum_is_zero():
    loss, grad = losses.cross_entropy(L2, np.zeros(4, int), mask=np.zeros(4, bool),
                                      reduction="sum")
    assert loss == 0 and not grad.any()


# ---------------------------------------------------------------- against PyTorch
def _torch_loss(name, a, kw, reduction):
    """The same loss in torch, and its gradient with respect to ``a`` by autograd."""
    torch = _torch()
    F = torch.nn.functional
    at = torch.tensor(a, requires_grad=True)
    if name == "mse":
        loss = F.mse_loss(at, torch.tensor(kw["target"]), reduction=reduction)
    elif name == "bce":
        loss = F.binary_cross_entropy_with_logits(at, torch.tensor(kw["target"]),
                                                  reduction=reduction)
    else:   # torch wants (N, C); masked entries carry ignore_index = -100 in problem()
        C = a.shape[-1]
        loss = F.cross_entropy(at.reshape(-1, C), torch.tensor(kw["target"]).reshape(-1),
                               ignore_index=-100, reduction=reduction)
    loss.backward()
    return loss.item(), at.grad.numpy()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_matches_torch(name, reduction):
    _torch()
    a, kw = problem(name, (5, 3), C=7)
    loss, grad = FUNCTIONS[name](a, **kw, reduction=reduction)
    ref, gref = _torch_loss(name, a, kw, reduction)
    np.testing.assert_allclose(loss, ref, rtol=0, atol=ATOL, err_msg=f"{name} {reduction} loss")
    np.testing.assert_allclose(grad, gref, rtol=0, atol=ATOL, err_msg=f"{name} {reduction} grad")


def test_extreme_logits_match_torch():
    _torch()
    z = np.array([[1000, -1000, 0], [-1000, -1000, 1000], [1000, 1000, -1000]], np.float64)
    kw_ce = {"target": np.array([1, 0, 2])}
    kw_bce = {"target": np.array([[0, 1, 0.5], [1, 0, 0], [1, 0, 1]])}
    for name, kw in (("ce", kw_ce), ("bce", kw_bce)):
        loss, grad = FUNCTIONS[name](z, **kw)
        ref, gref = _torch_loss(name, z, kw, "mean")
        np.testing.assert_allclose(loss, ref, rtol=1e-15, err_msg=f"{name} loss")
        np.testing.assert_allclose(grad, gref, rtol=0, atol=ATOL, err_msg=f"{name} grad")


def test_softmax_matches_torch():
    torch = _torch()
    z = np.random.default_rng(0).normal(size=(3, 4, 5)) * 10
    for axis in (-1, 0):
        np.testing.assert_allclose(losses.softmax(z, axis), torch.softmax(torch.tensor(z), axis),
                                   rtol=0, atol=ATOL)
        np.testing.assert_allclose(losses.log_softmax(z, axis),
                                   torch.log_softmax(torch.tensor(z), axis), rtol=0, atol=ATOL)
