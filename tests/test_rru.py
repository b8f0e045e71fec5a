"""rru's own options: output_size, multiplier, dropout, seed; and its initialisation."""

import numpy as np
import pytest

import minigru as mg

DTYPES = [np.float64, np.float32]


def _problem(cell, I=3, H=4, T=5, B=2, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    p = cell.init(I, H, rng=rng, dtype=dtype)
    p = {k: (v + rng.normal(0.0, 0.3, v.shape)).astype(dtype) for k, v in p.items()}
    x = rng.normal(size=(T, B, I)).astype(dtype)
    h0 = rng.normal(0.0, 0.5, (B, H)).astype(dtype)
    return p, x, h0


def _assert_all_ok(checks, label):
    bad = [f"{label} {c.tensor}: max relative error {c.error:.2e} > {c.tolerance:.0e}"
           for c in checks if not c.ok]
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------ shapes and sizes

def test_output_size_differs_from_hidden_size():
    I, H, O, T, B = 3, 4, 7, 5, 2
    cell = mg.cell("rru", output_size=O)
    p, x, h0 = _problem(cell, I, H, T, B)
    assert p["V"].shape == (p["J"].shape[1], H + O) and p["v"].shape == (H + O,)
    ys, h, cache = cell.forward(p, x, h0)
    assert ys.shape == (T, B, O), "rru ys must be (T, B, O)"
    assert h.shape == (B, H), "rru state must be (B, H), not O wide"
    dx, dh0, grads = cell.backward(p, cache, np.ones_like(ys), np.ones_like(h))
    assert dx.shape == x.shape and dh0.shape == (B, H)
    assert {k: g.shape for k, g in grads.items()} == {k: a.shape for k, a in p.items()}
    y, h1 = cell.step(p, x[0], h0)
    assert y.shape == (B, O) and h1.shape == (B, H)


@pytest.mark.parametrize("multiplier, M", [(2, 14), (1, 7), (0.5, 4), (3.3, 23)])
def test_multiplier_sets_the_middle_width(multiplier, M):
    # I + H = 7; M = round(multiplier * 7), Python's round as the official code
    cell = mg.cell("rru", multiplier=multiplier)
    p = cell.init(3, 4, rng=np.random.default_rng(0))
    assert p["J"].shape == (7, M) and p["j"].shape == (M,) and p["V"].shape == (M, 8)
    x = np.ones((2, 1, 3))
    ys, _, _ = cell.forward(p, x)      # the sizes read back from p agree with the shapes
    assert ys.shape == (2, 1, 4)


def test_sizes_read_back_reproduce_the_shapes():
    variant = mg.cells.get_variant("rru")
    for I in range(1, 12):
        for H in range(1, 12):
            for mult in (0.3, 1, 1.5, 2, 2.7, 4):
                for O in (None, 1, 5):
                    shapes = variant.shapes(I, H, output_size=O, multiplier=mult)
                    p = {k: np.zeros(s) for k, s in shapes.items()}
                    sizes = variant.sizes(p)
                    assert variant.shapes(**sizes) == shapes, (I, H, mult, O, sizes)


def test_an_empty_middle_layer_is_refused():
    with pytest.raises(ValueError, match="middle layer"):
        mg.cell("rru", multiplier=0.01).init(1, 1)


@pytest.mark.parametrize("I, H, O, multiplier", [(3, 4, None, 2), (5, 2, 3, 2), (2, 6, 1, 1.5)])
def test_parameter_count(I, H, O, multiplier):
    M = round(multiplier * (I + H))
    O_ = H if O is None else O
    expected = (I + H) * M + M + M * (H + O_) + (H + O_) + 2 * H     # VARIANTS.md's table
    cell = mg.cell("rru", output_size=O, multiplier=multiplier)
    assert cell.num_params(I, H) == expected
    p = cell.init(I, H)
    assert sum(a.size for a in p.values()) == expected


def test_float32_stays_float32():
    cell = mg.cell("rru", dropout=0.2, seed=0, output_size=3)
    p, x, h0 = _problem(cell, dtype=np.float32)
    ys, h, cache = cell.forward(p, x, h0)
    arrays = {"ys": ys, "h": h, **{k: v for k, v in cache.items() if isinstance(v, np.ndarray)}}
    dx, dh0, grads = cell.backward(p, cache, np.ones_like(ys), np.ones_like(h))
    arrays.update(dx=dx, dh0=dh0, **{"d" + k: g for k, g in grads.items()})
    arrays["step"] = cell.step(p, x[0], h0)[0]
    upcast = sorted(k for k, a in arrays.items() if a.dtype != np.float32)
    assert not upcast, f"rru float32: {upcast} came back in another dtype"


# ------------------------------------------------------------------ initialisation

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_init_follows_the_paper(dtype):
    I, H, O = 6, 20, 9
    p = mg.cell("rru", output_size=O).init(I, H, rng=np.random.default_rng(3), dtype=dtype)
    M = 2 * (I + H)
    assert all(a.dtype == dtype for a in p.values())
    for k in ("j", "v", "Z"):
        assert not p[k].any(), f"rru init: {k} must start at zero"
    # s = logit(U(0.01, 0.99)) / 10, so σ(10 s) is in (0.01, 0.99)
    limit = np.log(0.99 / 0.01) / 10
    assert np.all(np.abs(p["s"]) < limit + 1e-6)
    keep = 1 / (1 + np.exp(-10 * p["s"].astype(np.float64)))
    assert keep.min() > 0.01 - 1e-6 and keep.max() < 0.99 + 1e-6 and keep.std() > 0.1
    # glorot uniform: U(±sqrt(6 / (fan_in + fan_out))), and it fills most of that range
    for k, (fan_in, fan_out) in {"J": (I + H, M), "V": (M, H + O)}.items():
        lim = np.sqrt(6 / (fan_in + fan_out))
        assert np.abs(p[k]).max() <= lim * (1 + 1e-6), f"rru init: {k} beyond the glorot limit"
        assert np.abs(p[k]).max() > 0.9 * lim and abs(p[k].mean()) < 0.1 * lim


def test_init_starts_as_pure_residual():
    """With Z = 0 the state only decays: h' = h ⊙ σ(10 s), whatever the input."""
    cell = mg.cell("rru")
    p = cell.init(3, 4, rng=np.random.default_rng(0))
    h0 = np.random.default_rng(1).normal(size=(2, 4))
    x = np.random.default_rng(2).normal(size=(1, 2, 3))
    _, h1, _ = cell.forward(p, x, h0)
    np.testing.assert_allclose(h1, h0 / (1 + np.exp(-10 * p["s"])), rtol=1e-12)


# ------------------------------------------------------------------ dropout

def test_dropout_is_off_in_evaluation():
    cell = mg.cell("rru", dropout=0.3, seed=0)
    p, x, h0 = _problem(cell)
    ys1, h1, _ = cell.forward(p, x, h0, training=False)
    ys2, h2, _ = cell.forward(p, x, h0, training=False)
    np.testing.assert_array_equal(ys1, ys2)
    np.testing.assert_array_equal(h1, h2)
    ys0, h0_, cache = mg.cell("rru").forward(p, x, h0, training=True)     # dropout 0
    assert cache["mask"] is None
    np.testing.assert_array_equal(ys1, ys0)
    np.testing.assert_array_equal(h1, h0_)
    # and step is evaluation mode
    h = h0
    for t in range(x.shape[0]):
        y, h = cell.step(p, x[t], h)
        np.testing.assert_allclose(y, ys1[t], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h, h1, rtol=1e-12, atol=1e-14)


def test_dropout_changes_training_outputs():
    cell = mg.cell("rru", dropout=0.3, seed=0)
    p, x, h0 = _problem(cell)
    ys_train, _, _ = cell.forward(p, x, h0, training=True)
    ys_eval, _, _ = cell.forward(p, x, h0, training=False)
    assert not np.allclose(ys_train, ys_eval)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_dropout_mask_is_inverted_dropout(dtype):
    rate = 0.3
    cell = mg.cell("rru", dropout=rate, seed=1)
    p, x, h0 = _problem(cell, I=10, H=10, T=20, B=8, dtype=dtype)
    _, _, cache = cell.forward(p, x, h0)
    mask = cache["mask"]
    assert mask.shape == cache["a"].shape and mask.dtype == dtype
    kept = mask != 0
    np.testing.assert_allclose(mask[kept], 1 / (1 - rate), rtol=1e-6)
    assert abs(1 - kept.mean() - rate) < 0.02     # 6400 draws: 4 standard deviations


def test_the_mask_does_not_depend_on_the_dtype():
    """The mask is drawn in float64 whatever the dtype, so float32 gradcheck sees the same."""
    cell = mg.cell("rru", dropout=0.3)
    masks = []
    for dtype in DTYPES:
        p, x, h0 = _problem(cell, dtype=dtype)
        _, _, cache = cell.forward(p, x, h0, rng=np.random.default_rng(7))
        masks.append(cache["mask"] != 0)
    np.testing.assert_array_equal(*masks)


def test_reproducible_with_a_seed():
    def run(seed):
        cell = mg.cell("rru", dropout=0.3, seed=seed)
        p, x, h0 = _problem(cell)
        ys, h, _ = cell.forward(p, x, h0, training=True)
        return ys, h

    ys_a, h_a = run(5)
    ys_b, h_b = run(5)
    np.testing.assert_array_equal(ys_a, ys_b)
    np.testing.assert_array_equal(h_a, h_b)
    ys_c, _ = run(6)
    assert not np.array_equal(ys_a, ys_c), "rru: different seeds gave the same dropout"


def test_successive_forwards_draw_new_masks():
    cell = mg.cell("rru", dropout=0.3, seed=5)
    p, x, h0 = _problem(cell)
    ys1, _, _ = cell.forward(p, x, h0)
    ys2, _, _ = cell.forward(p, x, h0)
    assert not np.array_equal(ys1, ys2)


# ------------------------------------------------------------------ gradients

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("options", [{"dropout": 0.3}, {"output_size": 2, "multiplier": 1.5},
                                     {"dropout": 0.5, "output_size": 6, "multiplier": 3}],
                         ids=["dropout", "output_size", "all"])
def test_gradcheck_with_options(options, dtype):
    checks = mg.gradcheck("rru", dtype=dtype, options=options)
    _assert_all_ok(checks, f"rru {np.dtype(dtype).name} {options}")


@pytest.mark.parametrize("options", [{"dropout": 0.3},
                                     {"dropout": 0.3, "output_size": 3, "multiplier": 1.5}],
                         ids=["dropout", "all"])
def test_matches_torch_with_dropout(options):
    pytest.importorskip("torch", reason="PyTorch is the test-time oracle: pip install torch")
    from test_torch_parity import torch_check

    cell, cache = torch_check("rru", options=options, steps=7, batch=3, input_size=5,
                              hidden_size=6)
    assert cache["mask"] is not None and (cache["mask"] == 0).any(), "no unit was dropped"


def test_init_does_not_restart_the_dropout_stream():
    """A second init on a seeded cell must not replay the masks of the first."""
    cell = mg.cell("rru", dropout=0.5, seed=7)
    p = cell.init(3, 4, rng=np.random.default_rng(0))
    x = np.ones((5, 2, 3))
    first, _, _ = cell.forward(p, x)
    cell.init(3, 4, rng=np.random.default_rng(1))
    second, _, _ = cell.forward(p, x)
    assert not np.array_equal(first, second)
