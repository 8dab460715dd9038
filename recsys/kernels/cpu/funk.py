"""Simon Funk's original training (Netflix Prize, "Try This at Home", 2006).

Features are learned one at a time. While feature f trains, features 0..f−1 are fixed and
cached per rating, features after f are still zero, and each pass over the ratings
(in a fixed order) applies, for every rating,

    r̂ = clip(mu + b_u + b_i + c_ui + p_uf q_if)       c_ui = Σ_{g<f} p_ug q_ig (the cache)
    e = r − r̂
    p_uf += λ (e q_if − γ p_uf)      q_if += λ (e p_uf − γ q_if)     (old values on the right)
    b_u  += λ (e − γ_b b_u)          b_i  += λ (e − γ_b b_i)

with clip() to the rating scale seen in training: a prediction already at the top of the
scale for a 5-star rating gives no error, so features are not pushed to overshoot. The
biases (absent from Funk's write-up, which subtracted blended means first) are refined in
every pass. When the feature is done, c_ui += p_uf q_if and the next feature starts.

Without the clip this is the SGD step of ``recsys.kernels.cpu.sgd`` restricted to one column
of P and Q, so it descends the same J. Funk's settings: λ = 0.001, γ = 0.015, about 40
features, about 120 passes per feature. It is slow (features × passes sweeps) but each
sweep touches one float per rating and factor.
"""

import numba


@numba.njit(cache=True)
def funk_pass(users, items, values, cache, f, mu, bu, bi, P, Q, lr, reg, reg_bias, lo, hi):
    """One pass training feature ``f``; returns Σ e² of the clipped predictions."""
    sse = 0.0
    for n in range(len(values)):
        u = users[n]
        i = items[n]
        pu = P[u, f]
        qi = Q[i, f]
        pred = mu + bu[u] + bi[i] + cache[n] + pu * qi
        pred = min(max(pred, lo), hi)
        e = values[n] - pred
        P[u, f] = pu + lr * (e * qi - reg * pu)
        Q[i, f] = qi + lr * (e * pu - reg * qi)
        bu[u] += lr * (e - reg_bias * bu[u])
        bi[i] += lr * (e - reg_bias * bi[i])
        sse += e * e
    return sse


@numba.njit(cache=True)
def funk_commit(users, items, cache, f, P, Q):
    """Add feature ``f``'s products to the per-rating cache."""
    for n in range(len(users)):
        cache[n] += P[users[n], f] * Q[items[n], f]
