"""The per-epoch layout of the counterfactuals, the loss terms of a batch and the folded step."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skorch.callbacks import Callback
from sklearn.base import clone

import skct.training._loss as loss_module
import skct.training._net as net_module
from skct import CounterfactualTrainedClassifier
from skct.losses import adversarial_loss, contrastive_divergence, energy_ridge
from skct.training._search import _chunk_layout


def _two_blobs():
    rng = np.random.RandomState(0)
    X = np.r_[rng.randn(60, 3) - 1, rng.randn(61, 3) + 1].astype(np.float32)
    y = np.r_[np.zeros(60), np.ones(61)].astype(int)
    return X, y


@pytest.mark.parametrize("m, n_batches", [(1000, 100), (1000, 40), (7, 3), (5, 8), (1, 1)])
def test_chunk_layout_matches_tensor_split_and_packs_each_chunk(m, n_batches):
    bounds, order = _chunk_layout(SimpleNamespace(chunk_layout=None), m, n_batches)
    chunks = torch.arange(m).tensor_split(n_batches)
    assert len(bounds) == len(chunks)
    for (start, stop), chunk in zip(bounds, chunks):
        assert torch.equal(torch.arange(start, stop), chunk)
    packed = torch.arange(3 * m)[order]
    expect = torch.cat([torch.cat([c, c + m, c + 2 * m]) for c in chunks])
    assert torch.equal(packed, expect)


def test_chunk_layout_is_computed_once_per_fit():
    state = SimpleNamespace(chunk_layout=None)
    first = _chunk_layout(state, 10, 3)
    assert _chunk_layout(state, 10, 3)[1] is first[1]
    assert _chunk_layout(state, 10, 4)[0] != first[0]


def _expected_terms(net, X, y, cfs, sel):
    """ce, div, reg, adv of a batch from the loss functions, each part in its own pass."""
    with torch.no_grad():
        ce = F.cross_entropy(net.infer(X), torch.as_tensor(y))
        k = sel.numel()
        logits = net.infer(torch.cat([cfs.x_plus[sel], cfs.x_cf[sel], cfs.x_adv[sel]]))
        lp, lc, la = logits[:k], logits[k:2 * k], logits[2 * k:]
        return (ce, contrastive_divergence(lp, lc, cfs.target[sel]).mean(),
                energy_ridge(lp, lc, cfs.target[sel]).mean(),
                adversarial_loss(la, cfs.y_adv[sel]).mean())


@pytest.mark.parametrize("fold_rows", [True, False])
def test_batch_terms_are_those_of_the_chunk_rows(monkeypatch, fold_rows):
    """Each batch's recorded terms and loss are the loss functions on its rows and on x+, x',
    x_adv of its chunk (float rounding apart); the packed rows and labels follow the chunks."""
    X, y = _two_blobs()
    original = net_module.CounterfactualNet.get_loss
    checked = {"n": 0}

    def check(net, y_pred, y_true, X=None, training=False):
        loss = original(net, y_pred, y_true, X=X, training=training)
        state = net.fit_state_
        cfs = state.cfs if state is not None else None
        if not training or cfs is None or state.batch >= len(cfs.chunks):
            return loss
        sel = cfs.chunks[state.batch]
        start, stop = cfs.bounds[state.batch]
        assert torch.equal(cfs.packed[3 * start:3 * stop],
                           torch.cat([cfs.x_adv[sel], cfs.x_plus[sel], cfs.x_cf[sel]]))
        assert torch.equal(cfs.labels[3 * start:3 * stop, 0],
                           torch.cat([cfs.y_adv[sel], cfs.target[sel], cfs.target[sel]]))
        assert cfs.batch_rows[state.batch][0].data_ptr() == \
            cfs.packed[3 * start:3 * stop].data_ptr()  # a view, no copy
        expect = _expected_terms(net, X, y_true, cfs, sel)
        got = net.history[-1, "batches", -1]
        for name, want in zip(("ce", "div", "reg", "adv"), expect):
            assert got[f"train_{name}"] == pytest.approx(float(want), rel=1e-5, abs=1e-6)
        total = expect[0] + 0.5 * expect[1] + 0.1 * expect[2] + 0.25 * expect[3]
        assert float(loss.detach()) == pytest.approx(float(total), rel=1e-5, abs=1e-6)
        checked["n"] += 1
        return loss

    monkeypatch.setattr(net_module.CounterfactualNet, "get_loss", check)
    CounterfactualTrainedClassifier(max_epochs=2, batch_size=16, n_counterfactuals=50,
                                    fold_rows=fold_rows, random_state=0).fit(X, y)
    assert checked["n"] == 2 * 8  # 8 batches an epoch, each with a chunk of 6 or 7


class _FoldedVsSeparate(Callback):
    """At every batch with counterfactuals, runs the training step folded and unfolded on
    the same weights, batch and counterfactuals, keeping losses and gradients."""

    def initialize(self):
        self.pairs = []
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        state = net.fit_state_
        if not training or state.cfs is None or state.batch >= len(state.cfs.bounds):
            return
        out = []
        for fold in (True, False):
            net.fold_rows = fold
            net.optimizer_.zero_grad()
            loss = net.train_step_single(batch)["loss"]
            grads = [p.grad.clone() for p in net.module_.parameters()]
            out.append((loss.detach().clone(), grads))
        net.fold_rows = True
        net.optimizer_.zero_grad()
        self.pairs.append(out)


@pytest.mark.parametrize("criterion_kw", [{}, {"criterion__label_smoothing": 0.1}])
def test_folded_step_equals_separate_passes(criterion_kw):
    """One forward pass of [batch; x_adv; x+; x'] gives the loss of separate passes to float
    tolerance and the same parameter gradients to ~1e-6 relative (the default criterion's
    cross-entropy inside the weighted sum, and a criterion of the user's outside it)."""
    X, y = _two_blobs()
    spy = _FoldedVsSeparate()
    CounterfactualTrainedClassifier(max_epochs=2, batch_size=16, n_counterfactuals=50,
                                    hidden_layer_sizes=(16, 16), callbacks=[spy],
                                    random_state=0, **criterion_kw).fit(X, y)
    assert len(spy.pairs) == 16
    for (loss_f, grads_f), (loss_s, grads_s) in spy.pairs:
        torch.testing.assert_close(loss_f, loss_s, rtol=1e-6, atol=1e-7)
        for gf, gs in zip(grads_f, grads_s):
            scale = gs.abs().max().item()
            assert (gf - gs).abs().max().item() <= 2e-6 * max(scale, 1e-6)


def test_modules_with_batch_norm_or_dropout_are_not_folded(monkeypatch):
    """Their output for a row depends on the call's other rows or on random draws: the
    counterfactual rows get their own forward pass."""
    X, y = _two_blobs()
    seen = []
    original = net_module.CounterfactualNet._folded_step

    def spy(net, batch, rows):
        seen.append(True)
        return original(net, batch, rows)

    monkeypatch.setattr(net_module.CounterfactualNet, "_folded_step", spy)

    def with_middle(middle):  # a module class: Linear, ``middle``, Linear
        class Net(torch.nn.Module):
            def __init__(self, n_in=3, n_out=2):
                super().__init__()
                self.seq = torch.nn.Sequential(torch.nn.Linear(n_in, 8), middle(),
                                               torch.nn.Linear(8, n_out))

            def forward(self, X):
                return self.seq(X)
        return Net

    for module in (with_middle(lambda: torch.nn.Dropout(0.1)),
                   with_middle(lambda: torch.nn.BatchNorm1d(8))):
        CounterfactualTrainedClassifier(module, max_epochs=1, batch_size=16,
                                        n_counterfactuals=20, random_state=0).fit(X, y)
    assert not seen
    CounterfactualTrainedClassifier(max_epochs=1, batch_size=16, n_counterfactuals=20,
                                    random_state=0).fit(X, y)
    assert len(seen) == 8


def test_folding_off_or_on_gives_close_models():
    X, y = _two_blobs()
    kw = dict(max_epochs=3, batch_size=16, n_counterfactuals=50, random_state=0)
    a = CounterfactualTrainedClassifier(**kw).fit(X, y)
    b = CounterfactualTrainedClassifier(fold_rows=False, **kw).fit(X, y)
    for p, q in zip(a.logits_module_.parameters(), b.logits_module_.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    for key in ("train_loss", "train_ce", "train_div", "train_reg", "train_adv"):
        np.testing.assert_allclose(a.history_[:, key], b.history_[:, key], rtol=1e-4, atol=1e-5)


def test_component_weights_give_the_loss_functions():
    """W @ v and the closed-form gradient against the loss functions and autograd."""
    rng = torch.Generator().manual_seed(0)
    b, k, c = 5, 3, 4
    z = torch.randn(b + 3 * k, c, generator=rng, dtype=torch.float64, requires_grad=True)
    idx = torch.randint(0, c, (b + 2 * k,), generator=rng)
    idx = torch.cat([idx, idx[b + k:]])  # x' rows share the y+ of their x+ rows
    loss, comps = loss_module.ct_loss(z, idx[:, None], loss_module.component_weights(
        b, k, (0.5, 0.1, 0.25), dtype=torch.float64))
    la, lp, lc, t = z[b:b + k], z[b + k:b + 2 * k], z[b + 2 * k:], idx[b + k:b + 2 * k]
    expect = [F.cross_entropy(z[:b], idx[:b]), contrastive_divergence(lp, lc, t).mean(),
              energy_ridge(lp, lc, t).mean(), adversarial_loss(la, idx[b:b + k]).mean()]
    total = expect[0] + 0.5 * expect[1] + 0.1 * expect[2] + 0.25 * expect[3]
    torch.testing.assert_close(comps[:, 0], torch.stack([*expect, total]).detach())
    (g_closed,) = torch.autograd.grad(loss, z, retain_graph=True)
    (g_auto,) = torch.autograd.grad(total, z)
    torch.testing.assert_close(g_closed, g_auto)


def test_nonfinite_components_are_split_per_term():
    w = loss_module.component_weights(2, 1, (0.5, 0.1, 0.25))
    v = torch.ones(3 * 5, 1)
    v[2] = -float("inf")  # x_adv's log p
    v[:2] = -1.0  # the batch's log p
    own = loss_module.split_components(w, v)
    assert own[0] == 1.0 and own[1] == 0.0 and own[2] == 2.0
    assert own[3] == float("inf") and own[4] == float("inf")


def test_double_backward_is_refused_with_a_clear_error():
    z = torch.randn(4, 2, requires_grad=True)
    loss, _ = loss_module.ct_loss(z, torch.zeros(4, 1, dtype=torch.long),
                                  loss_module.component_weights(1, 1, (1.0, 1.0, 1.0)))
    with pytest.raises(RuntimeError, match="no double backward"):
        torch.autograd.grad(loss, z, create_graph=True)


def test_a_model_pickled_before_fold_rows_clones_and_refits():
    X, y = _two_blobs()
    clf = CounterfactualTrainedClassifier(max_epochs=1, batch_size=16, n_counterfactuals=20,
                                          warm_start=True, random_state=0).fit(X, y)
    del clf.fold_rows, clf.net_.fold_rows  # as unpickled from an older skct
    assert clone(clf).get_params()["fold_rows"] is True
    clf.fit(X, y)  # a warm fit: the inner net reads the default too
    assert len(clf.history_) == 2
