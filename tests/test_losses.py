"""The counterfactual training loss terms against hand-computed values."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skct.losses import adversarial_loss, contrastive_divergence, energy, energy_ridge, protect

_finite = st.floats(-10, 10, width=32, allow_nan=False, allow_infinity=False)


def test_energy_is_negative_target_logit():
    logits = torch.tensor([[1.0, 2.0, -3.0], [0.5, -1.0, 4.0]])
    target = torch.tensor([2, 0])
    torch.testing.assert_close(energy(logits, target), torch.tensor([3.0, -0.5]))


def test_divergence_and_ridge():
    lp = torch.tensor([[0.0, 2.0], [1.0, 0.0]])  # x+ logits
    lc = torch.tensor([[0.0, 0.5], [3.0, 0.0]])  # x' logits
    t = torch.tensor([1, 0])
    # E(x+) = [-2, -1], E(x') = [-0.5, -3]
    torch.testing.assert_close(contrastive_divergence(lp, lc, t), torch.tensor([-1.5, 2.0]))
    torch.testing.assert_close(energy_ridge(lp, lc, t), torch.tensor([4.25, 10.0]))


def test_adversarial_loss_is_per_row_cross_entropy():
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    y = torch.tensor([1, 0])
    expected = torch.tensor([torch.log(torch.tensor(2.0)),
                             -torch.log_softmax(torch.tensor([2.0, 0.0]), 0)[0]])
    torch.testing.assert_close(adversarial_loss(logits, y), expected)


def test_divergence_gradient_lowers_real_and_raises_counterfactual_energy():
    """A descent step on div increases logit_y+(x+) and decreases logit_y+(x')."""
    w = torch.zeros(2, 2, requires_grad=True)
    x_plus, x_cf = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    t = torch.tensor([1])
    div = contrastive_divergence(x_plus @ w.T, x_cf @ w.T, t).mean()
    (g,) = torch.autograd.grad(div, w)
    w_new = w.detach() - 0.1 * g
    assert (x_plus @ w_new.T)[0, 1] > 0 and (x_cf @ w_new.T)[0, 1] < 0


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 6)), elements=_finite),
       st.data())
def test_protect_rule(x_plus, data):
    n, d = x_plus.shape
    x_cf = data.draw(arrays(np.float32, (n, d), elements=_finite))
    # make ties likely too
    x_cf = np.where(data.draw(arrays(bool, (n, d))), x_plus, x_cf)
    codes = data.draw(arrays(np.int8, (d,), elements=st.integers(0, 3)))
    out = protect(torch.as_tensor(x_plus), torch.as_tensor(x_cf), torch.as_tensor(codes))
    out = out.numpy()
    for i in range(n):
        for j in range(d):
            swap = (codes[j] == 0 or (codes[j] == 1 and x_cf[i, j] > x_plus[i, j])
                    or (codes[j] == 2 and x_cf[i, j] < x_plus[i, j]))
            assert out[i, j] == (x_cf[i, j] if swap else x_plus[i, j])


def test_protect_hand_example():
    x_plus = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    x_cf = torch.tensor([[5.0, 2.0, 0.0, 2.0, 0.0, 9.0]])
    mut = torch.tensor([0, 1, 1, 2, 2, 3], dtype=torch.int8)
    expected = torch.tensor([[5.0, 2.0, 1.0, 1.0, 0.0, 1.0]])
    assert torch.equal(protect(x_plus, x_cf, mut), expected)
