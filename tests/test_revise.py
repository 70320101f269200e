"""REVISE: a well-conditioned autoencoder at any feature scale, and its own random streams."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import skct.search.generators.revise as revise_module
from skct import CounterfactualExplainer, CounterfactualTrainedClassifier
from skct.search.generators import REVISEGenerator
from skct.search.generators.revise import TabularVAE


def _large_scale_data(n=200, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3) * 100
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


def test_revise_counterfactuals_are_finite_when_features_have_a_scale_of_100():
    X, y = _large_scale_data()
    clf = CounterfactualTrainedClassifier(max_epochs=3, n_counterfactuals=50, generator="revise",
                                          random_state=0).fit(X, y)
    assert np.isfinite(np.asarray(clf.history_[:, "cf_valid"], dtype=float)).all()
    explainer = CounterfactualExplainer(clf, generator="revise", random_state=0).fit(X, y)
    res = explainer.explain(X[:20])
    cf = np.asarray(res.counterfactuals, dtype=float)
    assert np.isfinite(cf).all()
    assert res.valid.any()


def test_vae_reconstructs_large_scale_features_as_well_as_standardised_ones():
    X, _ = _large_scale_data()
    X = X.astype(np.float32)
    errors = {}
    for name, data in {"raw": X, "standardised": (X - X.mean(0)) / X.std(0)}.items():
        gen = REVISEGenerator(vae_epochs=30, vae_lr=1e-2, latent_dim=3, hidden=16,
                              random_state=0).fit(data)
        t = torch.as_tensor(data)
        with torch.no_grad():
            rec = gen.vae_.decode(gen.vae_.encode(t)[0])
        errors[name] = float(((rec - t) ** 2).mean() / t.var(dim=0).mean())
    assert np.isfinite(errors["raw"])
    assert errors["raw"] < 0.5
    assert errors["raw"] == pytest.approx(errors["standardised"], rel=0.05, abs=0.01)


def test_vae_standardises_inside_and_maps_back_exactly():
    loc, scale = torch.tensor([100.0, -5.0]), torch.tensor([50.0, 0.5])
    vae = TabularVAE(2, latent_dim=2, hidden=4, loc=loc, scale=scale,
                     generator=torch.Generator().manual_seed(0))
    x = torch.tensor([[150.0, -5.5], [100.0, -5.0]])
    torch.testing.assert_close(vae.standardise(x), torch.tensor([[1.0, -1.0], [0.0, 0.0]]))
    z = torch.randn(3, 2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(vae.decode(z), vae.decoder(z) * scale + loc)
    assert [name for name, _ in vae.named_buffers()] == ["loc", "scale"]


def test_constant_feature_gets_scale_one():
    X = np.c_[np.random.RandomState(0).randn(50), np.full(50, 7.0)].astype(np.float32)
    gen = REVISEGenerator(vae_epochs=2, latent_dim=2, hidden=8, random_state=0).fit(X)
    assert gen.vae_.scale[1].item() == 1.0 and gen.vae_.loc[1].item() == 7.0


def test_diverging_autoencoder_raises_a_clear_error(monkeypatch):
    def nan_loss(*args):
        return args[0].sum() * float("nan")

    monkeypatch.setattr(revise_module, "_vae_loss", nan_loss)
    X, _ = _large_scale_data(50)
    with pytest.raises(FloatingPointError, match="vae_lr"):
        REVISEGenerator(vae_epochs=2, random_state=0).fit(X)


def test_non_finite_reference_data_raises():
    X, _ = _large_scale_data(50)
    X[3, 1] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        REVISEGenerator(vae_epochs=1, random_state=0).fit(X)


def test_revise_fit_never_seeds_torchs_global_generator(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch's process-wide generator was used")

    monkeypatch.setattr(torch, "manual_seed", refuse)
    monkeypatch.setattr(torch.random, "fork_rng", refuse)
    X, _ = _large_scale_data(60)
    before = torch.get_rng_state()
    REVISEGenerator(vae_epochs=2, latent_dim=2, hidden=8, random_state=5).fit(X)
    assert torch.equal(torch.get_rng_state(), before)


def test_revise_fits_in_threads_match_a_fit_alone():
    X, _ = _large_scale_data(80)

    def fit(_):
        gen = REVISEGenerator(vae_epochs=3, latent_dim=2, hidden=8, random_state=3).fit(X)
        return torch.cat([p.flatten() for p in gen.vae_.parameters()])

    alone = fit(None)
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(fit, range(4)))
    assert all(torch.equal(alone, t) for t in threaded)


def test_search_in_another_dtype_leaves_the_fitted_autoencoder_alone():
    # the search converts a copy of the autoencoder; vae_ stays float32 as fit left it
    import pickle

    from skct.search import search
    from skct.search.generators import REVISEGenerator

    rng = np.random.RandomState(0)
    X = rng.randn(60, 3).astype(np.float32)
    gen = REVISEGenerator(vae_epochs=2, random_state=0).fit(X)
    model = torch.nn.Linear(3, 2).double()
    x = torch.as_tensor(X[:5], dtype=torch.float64)
    res = search(model, x, torch.ones(5, dtype=torch.long), gen, max_iter=3)
    assert res.counterfactuals.dtype == torch.float64
    assert all(p.dtype == torch.float32 for p in gen.vae_.parameters())
    again = search(model, x, torch.ones(5, dtype=torch.long), gen, max_iter=3)
    assert torch.equal(res.counterfactuals, again.counterfactuals)
    assert "_vae_copies" not in pickle.loads(pickle.dumps(gen)).__dict__
