"""The per-epoch layout of the counterfactuals: chunks, packed rows and the loss terms."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import skct.training._net as net_module
from skct import CounterfactualTrainedClassifier
from skct.losses import adversarial_loss, contrastive_divergence, energy_ridge
from skct.training._search import _chunk_layout


@pytest.mark.parametrize("m, n_batches", [(1000, 100), (1000, 40), (7, 3), (5, 8), (1, 1)])
def test_chunk_layout_matches_tensor_split_and_packs_each_chunk(m, n_batches):
    bounds, order, order2 = _chunk_layout(SimpleNamespace(chunk_layout=None), m, n_batches)
    chunks = torch.arange(m).tensor_split(n_batches)
    assert len(bounds) == len(chunks)
    for (start, stop), chunk in zip(bounds, chunks):
        assert torch.equal(torch.arange(start, stop), chunk)
    packed = torch.arange(3 * m)[order]
    expect = torch.cat([torch.cat([c, c + m, c + 2 * m]) for c in chunks])
    assert torch.equal(packed, expect)
    expect2 = torch.cat([torch.cat([c, c + m]) for c in chunks])
    assert torch.equal(torch.arange(2 * m)[order2], expect2)


def test_chunk_layout_is_computed_once_per_fit():
    state = SimpleNamespace(chunk_layout=None)
    first = _chunk_layout(state, 10, 3)
    assert _chunk_layout(state, 10, 3)[1] is first[1]
    assert _chunk_layout(state, 10, 4)[0] != first[0]


def test_batch_terms_are_those_of_the_chunk_rows(monkeypatch):
    """Each batch's terms equal the loss functions on x+, x', x_adv of its chunk, bit for bit."""
    rng = np.random.RandomState(0)
    X = np.r_[rng.randn(60, 3) - 1, rng.randn(61, 3) + 1].astype(np.float32)
    y = np.r_[np.zeros(60), np.ones(61)].astype(int)
    original = net_module._ct_terms
    checked = {"n": 0}

    def check(net, state):
        terms = original(net, state)
        cfs = state.cfs
        if terms is None or state.batch >= len(cfs.chunks):
            return terms
        sel = cfs.chunks[state.batch]
        k = sel.numel()
        logits = net.infer(torch.cat([cfs.x_plus[sel], cfs.x_cf[sel], cfs.x_adv[sel]]))
        lp, lc, la = logits[:k], logits[k:2 * k], logits[2 * k:]
        expect = (contrastive_divergence(lp, lc, cfs.target[sel]).mean(),
                  energy_ridge(lp, lc, cfs.target[sel]).mean(),
                  adversarial_loss(la, cfs.y_adv[sel]).mean())
        for got, want in zip(terms, expect):
            assert torch.equal(got, want)
        checked["n"] += 1
        return terms

    monkeypatch.setattr(net_module, "_ct_terms", check)
    CounterfactualTrainedClassifier(max_epochs=2, batch_size=16, n_counterfactuals=50,
                                    random_state=0).fit(X, y)
    assert checked["n"] == 2 * 8  # 8 batches an epoch, each with a chunk of 6 or 7
