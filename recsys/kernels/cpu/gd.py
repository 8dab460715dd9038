"""Full-batch gradient descent on J: the reference that shows why SGD is used instead.

Same model and loss as ``recsys.kernels.cpu.sgd`` (read its docstring for J and the
per-rating gradients). One epoch evaluates the gradient of J summed over every rating at
the current point, using ``loss_gradient`` from that module (checked against finite
differences), and takes one step

    θ ← θ − (λ/2) ∇_θ J        for θ in (b_u, b_i, P, Q)

so a parameter that appears in m ratings moves about as far as it would in the m SGD
updates of one epoch, but all m contributions are computed at the old point. The step is
stable only while λ/2 times the largest curvature is below 2; the curvature of b_u is
2 (|R(u)| + γ_b |R(u)|), so the heaviest user or item caps λ near 2 / max |R(u)| (about
0.003 on MovieLens 100k), and the many light users and items then move very slowly. SGD
has no such cap because each update sees one rating: that is why it wins, and why the bold
driver schedule (``recsys.training.schedule``) is the natural partner of this kernel.
"""

import numba

from recsys.kernels.cpu.sgd import loss_gradient, rating_error


@numba.njit(cache=True)
def gd_epoch(users, items, values, mu, bu, bi, P, Q, lr, reg, reg_bias):
    """One full-batch step in place; returns Σ e² at the point before the step."""
    sse = 0.0
    for n in range(len(values)):
        e = rating_error(users[n], items[n], values[n], mu, bu, bi, P, Q)
        sse += e * e
    g_bu, g_bi, g_P, g_Q = loss_gradient(users, items, values, mu, bu, bi, P, Q, reg,
                                         reg_bias)
    step = lr / 2
    bu -= step * g_bu
    bi -= step * g_bi
    P -= step * g_P
    Q -= step * g_Q
    return sse
