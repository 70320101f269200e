"""The native pass of the counterfactual training loss against the torch path."""

import numpy as np
import pytest
import torch
from skorch.history import History

import skct.training._loss as loss_module
import skct.training._loss_kernel as kernel_module
from skct import CounterfactualTrainedClassifier

needs_kernel = pytest.mark.skipif(kernel_module.library() is None,
                                  reason="no C compiler: the torch path runs")


def _problem(b, k, c, dtype=torch.float32, seed=0):
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(b + 3 * k, c, generator=rng, dtype=dtype) * 3
    idx = torch.randint(0, c, (b + 3 * k, 1), generator=rng)
    weights = loss_module.component_weights(b, k, (0.5, 0.1, 0.25), dtype=dtype)
    return z, idx, weights


def _torch_path(z, idx, weights):
    z = z.detach().requires_grad_()
    out = []
    loss = loss_module._CTLoss.apply(z, idx, weights, out)
    (grad,) = torch.autograd.grad(loss, z)
    return loss.detach(), out[0], grad


def _default_path(z, idx, weights):
    z = z.detach().requires_grad_()
    loss, comps = loss_module.ct_loss(z, idx, weights)
    (grad,) = torch.autograd.grad(loss, z)
    return loss.detach(), comps, grad, z


@needs_kernel
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("b, k, c", [(30, 10, 2), (5, 3, 4), (0, 7, 3), (128, 25, 2), (1, 0, 5)])
def test_native_pass_matches_the_torch_path(b, k, c, dtype, tol):
    z, idx, weights = _problem(b, k, c, dtype)
    assert kernel_module.kernel_for(z, idx, weights) is not None
    loss, comps, grad, _ = _default_path(z, idx, weights)
    want_loss, want_comps, want_grad = _torch_path(z, idx, weights)
    assert comps.shape == (5, 1) and comps.dtype == dtype and grad.dtype == dtype
    torch.testing.assert_close(comps, want_comps, rtol=tol, atol=tol)
    torch.testing.assert_close(loss, want_loss, rtol=tol, atol=tol)
    torch.testing.assert_close(grad, want_grad, rtol=tol, atol=tol)


@needs_kernel
def test_ct_terms_gradient_gives_the_gradients_of_backward():
    z, idx, weights = _problem(6, 2, 3)
    layer = torch.nn.Linear(3, 3)
    x = torch.randn(z.shape[0], 3, generator=torch.Generator().manual_seed(1))
    grads, values = [], []
    for direct in (False, True):
        layer.zero_grad()
        logits = layer(x)
        if direct:
            loss, comps, grad = loss_module.ct_terms(logits, idx, weights)
            assert loss.grad_fn is None
            logits.backward(grad)
        else:
            loss, comps = loss_module.ct_loss(logits, idx, weights)
            loss.backward()
        grads.append([p.grad.clone() for p in layer.parameters()])
        values.append((loss.item(), comps.clone()))
    for a, b in zip(*grads):
        assert torch.equal(a, b)
    assert values[0][0] == values[1][0] and torch.equal(values[0][1], values[1][1])


@pytest.mark.parametrize("b, k, c", [(30, 10, 2), (0, 4, 3)])
def test_ct_terms_without_the_kernel_equal_the_torch_node_bit_for_bit(monkeypatch, b, k, c):
    monkeypatch.setattr(loss_module, "kernel_for", lambda *args: None)
    z, idx, weights = _problem(b, k, c)
    loss, comps, grad = loss_module.ct_terms(z.requires_grad_(), idx, weights)
    assert loss.grad_fn is None and z.grad is None
    want_loss, want_comps, want_grad = _torch_path(z, idx, weights)
    assert torch.equal(comps, want_comps) and torch.equal(loss, want_loss)
    assert torch.equal(grad, want_grad)


@needs_kernel
def test_native_backward_twice_with_retain_graph_accumulates():
    z, idx, weights = _problem(4, 2, 2)
    z.requires_grad_()
    loss, _ = loss_module.ct_loss(z, idx, weights)
    loss.backward(retain_graph=True)
    once = z.grad.clone()
    loss.backward(torch.tensor(2.0))  # the saved gradient is not scaled in place
    torch.testing.assert_close(z.grad, 3 * once)


@needs_kernel
def test_native_pass_of_nonfinite_logits_is_nonfinite_like_the_product():
    z, idx, weights = _problem(3, 2, 2)
    z[0, 0] = float("inf")
    _, comps, _, _ = _default_path(z, idx, weights)
    _, want, _ = _torch_path(z, idx, weights)
    assert torch.equal(torch.isfinite(comps), torch.isfinite(want))
    assert not torch.isfinite(comps[4]).item()


@pytest.mark.parametrize("fn", ["ct_loss", "ct_terms"])
def test_out_of_range_labels_raise_torch_error(fn):
    z, idx, weights = _problem(3, 1, 2)
    idx[1, 0] = 2
    with pytest.raises(RuntimeError, match="out of bounds"):
        getattr(loss_module, fn)(z.requires_grad_(), idx, weights)


@pytest.mark.parametrize("change", ["device_dtype", "noncontiguous", "int32"])
def test_tensors_the_kernel_cannot_take_use_the_torch_path(change):
    z, idx, weights = _problem(4, 2, 3)
    if change == "device_dtype":
        z = z.half()
    elif change == "noncontiguous":
        z = torch.randn(3, z.shape[0]).t()
    else:
        idx = idx.int()
    assert kernel_module.kernel_for(z, idx, weights) is None


def test_without_a_compiler_training_uses_the_torch_path(monkeypatch):
    from skct._utils import _native

    rng = np.random.RandomState(0)
    X = np.r_[rng.randn(40, 2) - 1, rng.randn(40, 2) + 1].astype(np.float32)
    y = np.r_[np.zeros(40), np.ones(40)].astype(int)
    kw = dict(max_epochs=2, batch_size=16, n_counterfactuals=20, random_state=0)
    native = CounterfactualTrainedClassifier(**kw).fit(X, y)
    lib = kernel_module._LIBRARY
    monkeypatch.setattr(_native, "compiler", lambda: None)
    lib.reset()
    try:
        assert kernel_module.library() is None and "compiler" in kernel_module.status()
        z, idx, weights = _problem(2, 1, 2)
        assert kernel_module.kernel_for(z, idx, weights) is None
        fallback = CounterfactualTrainedClassifier(**kw).fit(X, y)
    finally:
        monkeypatch.undo()
        lib.reset()  # the next fit loads the kernel again
    for p, q in zip(native.logits_module_.parameters(), fallback.logits_module_.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    for key in ("train_loss", "train_ce", "train_div", "train_reg", "train_adv"):
        np.testing.assert_allclose(native.history_[:, key], fallback.history_[:, key],
                                   rtol=1e-5, atol=1e-6)


class _CountingHistory(History):
    """A History subclass: its record_batch must still be called for every component."""

    def record_batch(self, attr, value):
        self.n_recorded = getattr(self, "n_recorded", 0) + 1
        super().record_batch(attr, value)


@pytest.mark.parametrize("ct", [True, False])
def test_components_reach_a_history_subclass_through_record_batch(ct):
    rng = np.random.RandomState(0)
    X = rng.randn(40, 2).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    kw = {} if ct else dict(lambda_div=0.0, lambda_adv=0.0, lambda_reg=0.0)
    clf = CounterfactualTrainedClassifier(max_epochs=1, batch_size=20, n_counterfactuals=10,
                                          random_state=0, **kw)
    clf.fit(X, y)
    net = clf.net_
    net.history_ = _CountingHistory()
    net.partial_fit(X, y)
    # per batch: four components, then skorch's train_loss and train_batch_size
    assert net.history.n_recorded == 2 * 6
    for key in ("train_ce", "train_div", "train_reg", "train_adv"):
        assert len(net.history[-1, "batches", :, key]) == 2


@pytest.mark.parametrize("where", ["subclass", "instance"])
def test_an_overridden_get_loss_is_called_in_the_folded_step(where):
    """The folded step computes the net's own loss itself; an override is called instead."""
    from skct.training import MLP, CounterfactualNet
    from skct.search.generators import ECCoGenerator

    rng = np.random.RandomState(0)
    X = rng.randn(60, 2).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    calls = []

    class Net(CounterfactualNet):
        def get_loss(self, y_pred, y_true, X=None, training=False):
            calls.append(training)
            return super().get_loss(y_pred, y_true, X=X, training=training) * 1.0

    cls = Net if where == "subclass" else CounterfactualNet
    net = cls(MLP, module__n_features=2, module__n_classes=2, max_epochs=1, batch_size=20,
              n_counterfactuals=15, generator=ECCoGenerator().fit(X), verbose=0,
              random_state=0)
    if where == "instance":
        own = net.get_loss

        def get_loss(*args, **kwargs):
            calls.append(kwargs.get("training"))
            return own(*args, **kwargs)
        net.get_loss = get_loss
    net.fit(X, y)
    assert calls.count(True) == 3  # every training batch (each has counterfactuals)
    assert np.isfinite(net.history[-1, "train_div"])


@pytest.mark.parametrize("switch", ["config", "aten"])
def test_the_native_code_switches_keep_the_loss_on_torch(monkeypatch, switch):
    """fast_search=False and SKCT_COMPILED_SEARCH=aten mean no native code (SECURITY.md):
    training then runs the torch path, bit for bit the loss node's."""
    import skct

    z, idx, weights = _problem(5, 2, 2)
    if switch == "aten":
        monkeypatch.setenv("SKCT_COMPILED_SEARCH", "aten")
        assert kernel_module.kernel_for(z, idx, weights) is None
    else:
        with skct.config_context(fast_search=False):
            assert kernel_module.kernel_for(z, idx, weights) is None
            _, comps, grad = loss_module.ct_terms(z, idx, weights)
        want_loss, want_comps, want_grad = _torch_path(z, idx, weights)
        assert torch.equal(comps, want_comps) and torch.equal(grad, want_grad)


def test_a_fit_under_fast_search_false_is_bit_identical_to_the_loss_node(monkeypatch):
    """The switch read once per fit: the folded step then runs the torch path, whose
    gradients are those of the autograd node bit for bit."""
    import skct

    rng = np.random.RandomState(0)
    X = np.r_[rng.randn(40, 2) - 1, rng.randn(40, 2) + 1].astype(np.float32)
    y = np.r_[np.zeros(40), np.ones(40)].astype(int)
    kw = dict(max_epochs=2, batch_size=16, n_counterfactuals=20, random_state=0)
    seen = []
    original = loss_module.ct_terms

    def spy(logits, idx, weights, native=None):
        seen.append(native)
        return original(logits, idx, weights, native)

    monkeypatch.setattr(loss_module, "ct_terms", spy)
    with skct.config_context(fast_search=False):
        torch_path = CounterfactualTrainedClassifier(**kw).fit(X, y)
    assert seen and not any(seen)
    monkeypatch.setattr(loss_module, "ct_terms", lambda logits, idx, weights, native=None: (
        *loss_module.ct_loss(logits, idx, weights), None))  # through the autograd node
    with skct.config_context(fast_search=False):
        node = CounterfactualTrainedClassifier(**kw).fit(X, y)
    for p, q in zip(torch_path.logits_module_.parameters(), node.logits_module_.parameters()):
        assert torch.equal(p, q)
    for key in ("train_loss", "train_ce", "train_div", "train_reg", "train_adv"):
        assert torch_path.history_[:, key] == node.history_[:, key]
