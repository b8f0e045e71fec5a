"""The linear recurrence ``h_t = a_t ⊙ h_{t−1} + b_t`` for every t at once, in log space.

mingru and minlstm reduce to it, with ``a_t ∈ (0, 1)`` and ``b_t`` known for every step before
any recurrence is run (VARIANTS.md, "Parallel evaluation of the linear recurrences"). Unrolled::

    h_t = A_t ⊙ (h_0 + Σ_{k≤t} b_k / A_k),      A_t = a_1 ⊙ ... ⊙ a_t

a cumulative product and a cumulative sum: scans, which a parallel machine evaluates in
``O(log T)`` steps rather than T. Written as it stands it fails within a few hundred steps:
``A_t`` underflows (0.5^1100 is below float64's range) and ``b_k / A_k`` overflows. Heinsen
(2023, arXiv 2311.06281) takes logs: with ``log A_t = Σ_{k≤t} log a_k`` (a cumulative sum)::

    log h_t = log A_t + log(h_0 + Σ_{k≤t} b_k e^{−log A_k})

and the sum of exponentials is a cumulative *log-sum-exp*, which is never formed as the
exponentials it sums. h_0 and b may be negative (mingru's ñ is unbounded), so the terms are
summed in two groups by sign, each in log space, and ``h_t`` is the difference of the two
exponentials at the end::

    v_0 = log|h_0|,  v_k = log|b_k| − log A_k         (the terms, logs of their magnitudes)
    P_t = logcumsumexp of the v_k ≤ t with sign +,  N_t = those with sign −
    h_t = e^{log A_t + P_t} − e^{log A_t + N_t}

Exact, not an approximation: the same sum in another order, each term rounded once more; the
difference of the two groups is where it loses digits, about ``eps · (the positive part)``,
of the order of the largest recent term (tests: equal to the sequential loop to 1e-10 relative
in float64). NumPy's ``np.logaddexp.accumulate`` is the cumulative log-sum-exp.

The backward is the same recurrence run backwards: with ``g_t = dL/dh_t`` (through every later
step), ``g_t = dy_t + a_{t+1} ⊙ g_{t+1}`` and ``g_T = dy_T + dL/dh_T`` — a linear recurrence
in reverse, evaluated by the same scan on reversed arrays. Then ``dL/da_t = g_t ⊙ h_{t−1}``,
``dL/db_t = g_t`` and ``dL/dh_0 = a_1 ⊙ g_1``.

Dimension legend: T steps, B batch, H hidden.
"""

import numpy as np


def refuse_zoneout(name, masks):
    """The scan runs the cell's own recurrence for every step at once; zoneout's mix of old and
    new state at each step is not written into it (on any backend): say so, by name."""
    if masks is not None and masks.keep is not None:
        raise NotImplementedError(f"zoneout with scan='parallel' is not written yet for "
                                  f"{name}; use scan='sequential' with it")


def linear_scan(a, b, h0):
    """h (T, B, H) = h_1 .. h_T of h_t = a_t h_{t−1} + b_t, for a (T, B, H) > 0, b (T, B, H)
    of any sign and h0 (B, H), evaluated in log space (the module docstring)."""
    with np.errstate(divide="ignore"):                # log 0 = −inf: a term of zero
        log_A = np.cumsum(np.log(a), axis=0)          # (T, B, H)
        v = np.concatenate([np.log(np.abs(h0))[None], np.log(np.abs(b)) - log_A])
    sign = np.concatenate([np.sign(h0)[None], np.sign(b)])        # (T+1, B, H)
    none = np.array(-np.inf, v.dtype)
    P = np.logaddexp.accumulate(np.where(sign > 0, v, none), axis=0)[1:]
    N = np.logaddexp.accumulate(np.where(sign < 0, v, none), axis=0)[1:]
    return np.exp(log_A + P) - np.exp(log_A + N)


def linear_scan_backward(a, hs, dys, dh_T):
    """(da, db, dh_0) of the scan, from the states hs (T+1, B, H) = h_0 .. h_T it made, the
    gradients dys (T, B, H) into h_1 .. h_T and dh_T into the final state: the reverse
    recurrence g_t = dy_t + a_{t+1} g_{t+1}, as a scan of the reversed arrays."""
    alpha = np.concatenate([np.ones_like(a[:1]), a[:0:-1]])       # 1, a_T, a_{T−1}, .., a_2
    g = linear_scan(alpha, dys[::-1], dh_T)[::-1]                 # g_1 .. g_T
    return g * hs[:-1], g, a[0] * g[0]
