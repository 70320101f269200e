"""Counterfactual generators: objectives, energy decay, name resolution, REVISE's VAE."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from skct.constraints import TorchConstraints
from skct.search.generators import (
    GENERATORS,
    BaseGenerator,
    ECCoGenerator,
    GenericGenerator,
    REVISEGenerator,
    resolve_generator,
)
from skct.search.generators.ecco import energy_decay
from skct.search import search

from conftest import make_blobs2d, train_mlp

ALL_GENERATORS = [GenericGenerator, ECCoGenerator, REVISEGenerator]


# ---------------------------------------------------------------------------------------
# energy_decay
# ---------------------------------------------------------------------------------------


def _decay_reference(t, T):
    b = max(1, round(T / 25))
    a = b / 10
    return a * (b + t + 1) ** -0.9


@pytest.mark.parametrize("T", [1, 5, 12, 13, 25, 30, 50, 62, 100, 250])
def test_energy_decay_formula(T):
    for t in range(T):
        assert energy_decay(t, T) == pytest.approx(_decay_reference(t, T), rel=1e-12)


def test_energy_decay_known_values():
    # T=30: b = round(1.2) = 1, a = 0.1
    assert energy_decay(0, 30) == pytest.approx(0.1 * 2 ** -0.9, rel=1e-12)
    assert energy_decay(29, 30) == pytest.approx(0.1 * 31 ** -0.9, rel=1e-12)
    # T=100: b = 4, a = 0.4
    assert energy_decay(0, 100) == pytest.approx(0.4 * 5 ** -0.9, rel=1e-12)
    assert energy_decay(10, 100) == pytest.approx(0.4 * 15 ** -0.9, rel=1e-12)
    # T=250: b = 10, a = 1
    assert energy_decay(0, 250) == pytest.approx(11 ** -0.9, rel=1e-12)


@pytest.mark.parametrize("T", [1, 5, 10, 12])
def test_energy_decay_short_searches_are_not_zero(T):
    # the reference implementation has b = round(T/25) = 0 (no penalty at all) for T < 13;
    # skct deliberately clamps b to 1 so ECCo stays ECCo.
    assert round(T / 25) == 0
    for t in range(T):
        assert energy_decay(t, T) == pytest.approx(0.1 * (t + 2) ** -0.9, rel=1e-12)
        assert energy_decay(t, T) > 0


def test_energy_decay_is_decreasing_in_t():
    vals = [energy_decay(t, 100) for t in range(100)]
    assert all(a > b for a, b in zip(vals, vals[1:]))


# ---------------------------------------------------------------------------------------
# Objectives
# ---------------------------------------------------------------------------------------


def test_generic_loss_hand_computed():
    gen = GenericGenerator(lambda_cost=0.5)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([1, 1])
    x = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    x_cf = torch.tensor([[1.0, -2.0, 0.5], [1.0, 1.0, 1.0]])
    loss = gen.loss(x_cf, x, target, logits, 0, 10)
    ce0 = math.log(1 + math.exp(2.0))  # -log softmax([2, 0])[1]
    ce1 = math.log(1 + math.exp(-1.0))  # -log softmax([0, 1])[1]
    expected = torch.tensor([ce0 + 0.5 * 3.5, ce1 + 0.0])
    assert loss.shape == (2,)
    torch.testing.assert_close(loss, expected)
    # per row, and independent of t / max_iter
    torch.testing.assert_close(gen.loss(x_cf, x, target, logits, 7, 50), expected)
    assert gen.penalty(x_cf, x, target, logits, 0, 10) is None


def test_ecco_loss_is_generic_plus_energy_penalty():
    torch.manual_seed(1)
    logits = torch.randn(6, 3) * 3
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    x = torch.randn(6, 4)
    x_cf = x + torch.randn(6, 4)
    for lam, reg, t, T in [(5.0, 1e-3, 0, 30), (2.0, 1e-3, 7, 100), (1.0, 0.5, 3, 10)]:
        ecco = ECCoGenerator(lambda_cost=0.01, lambda_energy=lam, reg_strength=reg)
        generic = GenericGenerator(lambda_cost=0.01)
        e = -logits.gather(1, target[:, None]).squeeze(1)
        phi = _decay_reference(t, T)
        expected = generic.loss(x_cf, x, target, logits, t, T) + lam * phi * (e + reg * e**2)
        torch.testing.assert_close(ecco.loss(x_cf, x, target, logits, t, T), expected)
    # explicit numbers for the default weights (lambda_energy=5, reg 1e-3, T=30, t=0)
    lg = torch.tensor([[1.0, -2.0]])
    tg = torch.tensor([1])
    z = torch.zeros(1, 2)
    ce = math.log(1 + math.exp(3.0))
    e = 2.0
    expected = ce + 5.0 * 0.1 * 2 ** -0.9 * (e + 1e-3 * e**2)
    assert ECCoGenerator().loss(z, z, tg, lg, 0, 30).item() == pytest.approx(expected, rel=1e-6)
    # lambda_energy = 0 reduces ECCo to Generic
    torch.testing.assert_close(
        ECCoGenerator(lambda_energy=0.0).loss(x_cf, x, target, logits, 0, 30),
        GenericGenerator().loss(x_cf, x, target, logits, 0, 30))


def test_loss_gradient_flows_to_counterfactual():
    gen = ECCoGenerator()
    w = torch.randn(4, 2)
    x = torch.randn(3, 4)
    x_cf = x.clone().requires_grad_(True)
    loss = gen.loss(x_cf, x, torch.tensor([1, 0, 1]), x_cf @ w, 0, 30)
    (g,) = torch.autograd.grad(loss.sum(), x_cf)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_weighted_cost_hand_computed():
    gen = GenericGenerator(lambda_cost=0.5)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([1, 1])
    x = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    x_cf = torch.tensor([[1.0, -2.0, 0.5], [1.0, 3.0, 1.0]])
    w = torch.tensor([2.0, 0.25, 0.0])
    ce = F.cross_entropy(logits, target, reduction="none")
    expected = ce + 0.5 * torch.tensor([2.0 * 1 + 0.25 * 2 + 0.0, 0.25 * 2])
    torch.testing.assert_close(gen.loss(x_cf, x, target, logits, 0, 10, cost_weight=w),
                               expected)
    # unit weights give exactly the unweighted numbers
    for cls in (GenericGenerator, ECCoGenerator):
        g = cls(lambda_cost=0.3)
        assert torch.equal(g.loss(x_cf, x, target, logits, 2, 10, cost_weight=torch.ones(3)),
                           g.loss(x_cf, x, target, logits, 2, 10))


class _RecordingGenerator(GenericGenerator):
    """Records the cost weights the engine hands to the loss."""

    seen = []

    def loss(self, x_cf, x, target, logits, t, max_iter, **kwargs):
        _RecordingGenerator.seen.append(kwargs.get("cost_weight"))
        return super().loss(x_cf, x, target, logits, t, max_iter, **kwargs)


class _OldSignatureGenerator(GenericGenerator):
    """A user generator whose loss predates cost weights."""

    def loss(self, x_cf, x, target, logits, t, max_iter):
        return super().loss(x_cf, x, target, logits, t, max_iter)


def test_engine_passes_cost_weights_to_the_loss():
    X, y = make_blobs2d(n=20, seed=0)
    x, target = torch.as_tensor(X), 1 - torch.as_tensor(y)
    model = torch.nn.Linear(2, 2)
    free = (np.full(2, -np.inf), np.full(2, np.inf), ["both"] * 2, [])
    _RecordingGenerator.seen = []
    search(model, x, target, _RecordingGenerator(), TorchConstraints.from_arrays(*free),
           decision_threshold=1.0, max_iter=2)
    assert _RecordingGenerator.seen == [None, None]
    _RecordingGenerator.seen = []
    c = TorchConstraints.from_arrays(*free, cost_weight=[3.0, 0.5])
    search(model, x, target, _RecordingGenerator(), c, decision_threshold=1.0, max_iter=2)
    assert len(_RecordingGenerator.seen) == 2
    assert all(torch.equal(w, torch.tensor([3.0, 0.5])) for w in _RecordingGenerator.seen)
    # a generator written before cost weights still runs with unit weights
    res = search(model, x, target, _OldSignatureGenerator(), TorchConstraints.from_arrays(*free),
                 max_iter=3)
    assert res.counterfactuals.shape == (20, 2)


@pytest.mark.parametrize("cls", [GenericGenerator, ECCoGenerator])
def test_unit_cost_weights_reproduce_the_unweighted_search(cls):
    X, y = make_blobs2d(n=40, seed=1)
    x, target = torch.as_tensor(X), 1 - torch.as_tensor(y)
    model = train_mlp(X, y)
    gen = cls(step_size=0.1, lambda_cost=0.05)
    free = (np.full(2, -np.inf), np.full(2, np.inf), ["both"] * 2, [])
    plain = search(model, x, target, gen, None, decision_threshold=0.9, max_iter=30)
    ones = search(model, x, target, gen, TorchConstraints.from_arrays(*free, cost_weight=[1, 1]),
                  decision_threshold=0.9, max_iter=30)
    assert torch.equal(plain.counterfactuals, ones.counterfactuals)
    assert torch.equal(plain.n_iter, ones.n_iter)


def test_cost_weights_steer_the_search():
    # the target side is reached by moving either feature; a heavy weight on feature 0 makes
    # the search move feature 1 instead
    w = torch.tensor([[1.0, -1.0], [1.0, -1.0]])

    def model(z):
        return (z[:, :1] + z[:, 1:]) * w[0]

    x = torch.zeros(1, 2)
    target = torch.tensor([0])
    gen = GenericGenerator(step_size=0.1, lambda_cost=0.5)
    free = (np.full(2, -np.inf), np.full(2, np.inf), ["both"] * 2, [])
    res = search(model, x, target, gen, TorchConstraints.from_arrays(*free, cost_weight=[4, 0]),
                 decision_threshold=0.99, max_iter=200)
    cf = res.counterfactuals[0]
    assert bool(res.converged[0])
    assert abs(float(cf[0])) < abs(float(cf[1]))


# ---------------------------------------------------------------------------------------
# resolve_generator
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, cls", [("generic", GenericGenerator), ("ECCo", ECCoGenerator),
                                       ("REVISE", REVISEGenerator), ("Generic", GenericGenerator)])
def test_resolve_by_name(name, cls):
    gen = resolve_generator(name)
    assert type(gen) is cls
    assert gen.get_params() == cls().get_params()


def test_resolve_by_name_passes_accepted_defaults_only():
    gen = resolve_generator("revise", step_size=0.3, random_state=4, lambda_energy=9.0)
    assert gen.step_size == 0.3 and gen.random_state == 4
    gen = resolve_generator("generic", step_size=0.3, random_state=4, lambda_energy=9.0)
    assert gen.step_size == 0.3 and not hasattr(gen, "random_state")


def test_resolve_by_instance_returns_unfitted_clone():
    X = np.random.RandomState(0).randn(30, 3).astype(np.float32)
    orig = REVISEGenerator(vae_epochs=1, latent_dim=2, random_state=0)
    params = orig.get_params()
    got = resolve_generator(orig)
    assert got is not orig and type(got) is REVISEGenerator
    assert got.get_params() == params
    got.fit(X)
    got.set_params(step_size=0.9)
    assert not hasattr(orig, "vae_") and not hasattr(orig, "n_features_in_")
    assert orig.get_params() == params
    # a fitted instance is cloned to an unfitted one
    again = resolve_generator(got)
    assert not hasattr(again, "vae_") and again.step_size == 0.9


def test_resolve_unknown_name_and_wrong_type():
    with pytest.raises(ValueError, match=r"cf_generator: unknown generator 'wachter'"):
        resolve_generator("wachter", param="cf_generator")
    with pytest.raises(ValueError, match=r"generator: unknown generator"):
        resolve_generator("nope")
    with pytest.raises(TypeError, match=r"generator: expected a generator name.*got int"):
        resolve_generator(3)
    with pytest.raises(TypeError, match=r"my_gen: .*got type"):
        resolve_generator(GenericGenerator, param="my_gen")  # a class, not an instance


def test_registry():
    from skct.search.generators import ECCCoGenerator

    assert GENERATORS == {"generic": GenericGenerator, "ecco": ECCoGenerator,
                          "eccco": ECCCoGenerator, "revise": REVISEGenerator}
    assert all(issubclass(c, BaseGenerator) for c in GENERATORS.values())


# ---------------------------------------------------------------------------------------
# sklearn API: params, clone, validation
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_GENERATORS)
def test_get_set_params_and_clone(cls):
    gen = cls(step_size=0.05, lambda_cost=0.2)
    params = gen.get_params()
    assert params["step_size"] == 0.05 and params["lambda_cost"] == 0.2
    assert gen.set_params(step_size=0.07) is gen
    assert gen.step_size == 0.07
    twin = clone(gen)
    assert twin is not gen and type(twin) is cls
    assert twin.get_params() == gen.get_params()
    with pytest.raises(ValueError, match="Invalid parameter"):
        gen.set_params(no_such_param=1)


def test_specific_params():
    e = ECCoGenerator(lambda_energy=1.5, reg_strength=0.1)
    assert clone(e).get_params()["lambda_energy"] == 1.5
    r = REVISEGenerator(latent_dim=3, hidden=7, vae_epochs=2, beta=0.5, random_state=3)
    p = clone(r).get_params()
    assert (p["latent_dim"], p["hidden"], p["vae_epochs"], p["beta"], p["random_state"]) == (
        3, 7, 2, 0.5, 3)


@pytest.mark.parametrize("cls", ALL_GENERATORS)
@pytest.mark.parametrize("step_size", [0.0, -0.1])
def test_invalid_step_size_raises_on_fit(cls, step_size):
    X = np.random.RandomState(0).randn(10, 2).astype(np.float32)
    gen = cls(step_size=step_size)  # construction does not validate
    with pytest.raises(InvalidParameterError, match="step_size"):
        gen.fit(X)


@pytest.mark.parametrize("cls, bad", [(GenericGenerator, {"lambda_cost": -1.0}),
                                      (ECCoGenerator, {"lambda_energy": -1.0}),
                                      (REVISEGenerator, {"latent_dim": 0}),
                                      (REVISEGenerator, {"vae_lr": 0.0})])
def test_other_invalid_params_raise_on_fit(cls, bad):
    X = np.random.RandomState(0).randn(10, 2).astype(np.float32)
    with pytest.raises(InvalidParameterError, match=next(iter(bad))):
        cls(**bad).fit(X)


def test_x_space_generators_fit_is_trivial():
    X = np.random.RandomState(0).randn(10, 3).astype(np.float32)
    for cls in (GenericGenerator, ECCoGenerator):
        gen = cls()
        assert gen.fit(X) is gen and gen.n_features_in_ == 3
        assert not gen.latent


# ---------------------------------------------------------------------------------------
# REVISE
# ---------------------------------------------------------------------------------------


def _recon_error(gen, X):
    Xt = torch.as_tensor(X)
    with torch.no_grad():
        mu, _ = gen.vae_.encode(Xt)
        return float(((gen.vae_.decode(mu) - Xt) ** 2).sum(dim=1).mean())


def test_revise_fit_trains_the_vae():
    X, _ = make_blobs2d(n=200)
    kw = dict(latent_dim=2, hidden=16, random_state=0)
    # same seed, a learning rate too small to move: the VAE as initialised
    init = REVISEGenerator(vae_epochs=1, vae_lr=1e-12, **kw).fit(X)
    fitted = REVISEGenerator(vae_epochs=30, vae_lr=1e-2, **kw).fit(X)
    err0, err1 = _recon_error(init, X), _recon_error(fitted, X)
    assert err1 < 0.5 * err0
    assert fitted.n_features_in_ == 2 and fitted.latent
    # the fitted VAE is frozen and in eval mode
    assert not fitted.vae_.training
    assert all(not p.requires_grad for p in fitted.vae_.parameters())


def test_revise_fit_is_reproducible():
    X, _ = make_blobs2d(n=60)
    a = REVISEGenerator(vae_epochs=2, latent_dim=2, hidden=8, random_state=5).fit(X)
    b = REVISEGenerator(vae_epochs=2, latent_dim=2, hidden=8, random_state=5).fit(X)
    for pa, pb in zip(a.vae_.parameters(), b.vae_.parameters()):
        assert torch.equal(pa, pb)
    # and it leaves the global torch RNG alone
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    REVISEGenerator(vae_epochs=1, latent_dim=2, hidden=8, random_state=5).fit(X)
    assert torch.equal(torch.rand(3), expected)


def test_revise_fit_needs_2d_data_with_rows():
    with pytest.raises(ValueError, match="at least two rows"):
        REVISEGenerator(vae_epochs=1).fit(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="2D"):
        REVISEGenerator(vae_epochs=1).fit(np.zeros(5, dtype=np.float32))


def test_unfitted_revise_in_search_raises():
    model = torch.nn.Linear(2, 2)
    x = torch.zeros(3, 2)
    with pytest.raises(RuntimeError, match="REVISEGenerator is not fitted"):
        search(model, x, torch.ones(3, dtype=torch.long), REVISEGenerator())
    assert model.training  # restored after the error


def test_revise_feature_count_mismatch():
    X, y = make_blobs2d(n=60)
    gen = REVISEGenerator(vae_epochs=1, latent_dim=2, hidden=8, random_state=0).fit(X)
    model = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match="fitted on 2 features, got 3"):
        search(model, torch.zeros(4, 3), torch.ones(4, dtype=torch.long), gen)


def test_revise_search_state_is_latent():
    X, y = make_blobs2d(n=100)
    model = train_mlp(X, y, epochs=100)
    gen = REVISEGenerator(vae_epochs=20, latent_dim=2, hidden=16, vae_lr=1e-2,
                          random_state=0).fit(X)
    x = torch.as_tensor(X[:5])
    z = gen.init_state(x)
    assert z.shape == (5, 2) and not z.requires_grad
    xd = gen.to_input(z, x, TorchConstraints.unconstrained(2))
    with torch.no_grad():
        torch.testing.assert_close(xd, gen.vae_.decode(z))
    res = search(model, x, 1 - torch.as_tensor(y[:5]), gen, max_iter=50)
    assert res.counterfactuals.shape == (5, 2)
    assert bool(res.converged.all())


# -- ECCCo ----------------------------------------------------------------------------------


def test_conformal_quantile_hand_computed():
    from skct.search.generators.eccco import conformal_quantile

    # scores 1 - p = [0.1, 0.2, 0.3, 0.4]; n = 4, alpha = 0.5 -> level ceil(5 * 0.5) / 4 = 0.75
    assert conformal_quantile([0.9, 0.8, 0.7, 0.6], 0.5) == pytest.approx(0.3)
    # level above 1 -> every class is in the set
    assert conformal_quantile([0.9, 0.8], 0.1) == float("inf")


def test_smooth_set_size_and_penalty():
    from skct.search.generators import ECCCoGenerator, ECCoGenerator
    from skct.search.generators.eccco import smooth_set_size

    proba = torch.tensor([[0.98, 0.02], [0.5, 0.5]])
    size = smooth_set_size(proba, q_hat=0.1, temperature=0.1)  # threshold p >= 0.9
    expected = torch.sigmoid((proba - 0.9) / 0.1).sum(1)
    torch.testing.assert_close(size, expected)
    assert size[0] < 1.5 and size[1] < size[0]  # the uncertain row's set is empty-ish here
    gen = ECCCoGenerator(lambda_setsize=2.0, kappa=0.0)
    gen.quantile_ = 0.1
    logits = torch.log(proba)
    x = torch.zeros(2, 2)
    t = torch.tensor([0, 1])
    base = ECCoGenerator().penalty(x, x, t, logits, 0, 30)
    torch.testing.assert_close(gen.penalty(x, x, t, logits, 0, 30),
                               base + 2.0 * torch.relu(expected))


def test_eccco_needs_calibration_and_reaches_validity(blobs, tiny_mlp):
    from skct.search.generators import ECCCoGenerator
    from skct.search import search

    X, y = blobs
    x = torch.as_tensor(X)
    target = 1 - torch.as_tensor(y)
    with pytest.raises(RuntimeError, match="calibrate"):
        search(tiny_mlp, x, target, ECCCoGenerator(), max_iter=2)
    gen = ECCCoGenerator().calibrate(tiny_mlp, x, torch.as_tensor(y))
    res = search(tiny_mlp, x, target, gen, decision_threshold=0.75, max_iter=100)
    assert res.converged.float().mean() >= 0.95


def test_eccco_by_name_in_explainer_and_classifier(blobs):
    from skct import CounterfactualExplainer, CounterfactualTrainedClassifier

    X, y = blobs
    clf = CounterfactualTrainedClassifier(generator="eccco", max_epochs=3, n_counterfactuals=50,
                                          lr=0.01, random_state=0).fit(X, y)
    assert np.isfinite(np.asarray(clf.history_[:, "train_div"])).all()
    ex = CounterfactualExplainer(clf, generator="eccco", target="opposite", random_state=0)
    with pytest.raises(ValueError, match="pass y"):
        ex.fit(X)
    res = ex.fit(X, y).explain(X[:20])
    assert 0.0 <= ex.generator_.quantile_ <= 1.0 or ex.generator_.quantile_ == float("inf")
    assert res.valid.mean() > 0.5
