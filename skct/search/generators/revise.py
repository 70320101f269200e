"""REVISE: counterfactual search in the latent space of a variational autoencoder."""

from __future__ import annotations

import copy
import math
import numbers

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data
from torch import nn

from ..._utils import Interval
from ...constraints import TorchConstraints
from .._projection import project, reharden_groups, straight_through_harden
from ._base import BaseGenerator

__all__ = ["REVISEGenerator", "TabularVAE"]


class TabularVAE(nn.Module):
    """A small Gaussian VAE for tabular data: D -> hidden -> (mu, logvar) -> D.

    It works on standardised features: ``encode`` maps its input to ``(x - loc) / scale`` first
    and ``decode`` maps back with ``x = out * scale + loc``, so its inputs and outputs are in
    the caller's units while the network sees a well-conditioned scale. ``loc`` and ``scale``
    (buffers, [D]) default to 0 and 1.

    With ``generator`` the weights are initialised from it (PyTorch's default ``nn.Linear``
    scheme) without touching torch's process-wide generator; otherwise torch's default
    initialisation is used.

    Examples
    --------
    >>> import torch
    >>> vae = TabularVAE(3, latent_dim=2, loc=torch.full((3,), 100.0),
    ...                  generator=torch.Generator().manual_seed(0))
    >>> mu, logvar = vae.encode(torch.full((4, 3), 100.0))
    >>> vae.decode(mu).shape, mu.shape
    (torch.Size([4, 3]), torch.Size([4, 2]))
    """

    def __init__(self, n_features, latent_dim=8, hidden=64, *, loc=None, scale=None,
                 generator=None):
        super().__init__()

        def linear(n_in, n_out):
            if generator is None:
                return nn.Linear(n_in, n_out)
            layer = torch.nn.utils.skip_init(nn.Linear, n_in, n_out)  # no global draws
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            bound = 1.0 / math.sqrt(n_in)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
            return layer

        self.encoder = nn.Sequential(linear(n_features, hidden), nn.ReLU())
        self.mu = linear(hidden, latent_dim)
        self.logvar = linear(hidden, latent_dim)
        self.decoder = nn.Sequential(
            linear(latent_dim, hidden), nn.ReLU(), linear(hidden, n_features)
        )
        loc = torch.zeros(n_features) if loc is None else torch.as_tensor(loc)
        scale = torch.ones(n_features) if scale is None else torch.as_tensor(scale)
        self.register_buffer("loc", loc.to(torch.float32).reshape(n_features).clone())
        self.register_buffer("scale", scale.to(torch.float32).reshape(n_features).clone())

    def standardise(self, x):  # [N, D] -> [N, D]
        return (x - self.loc) / self.scale

    def encode(self, x):  # [N, D] -> [N, K], [N, K]
        h = self.encoder(self.standardise(x))
        return self.mu(h), self.logvar(h)

    def decode(self, z):  # [N, K] -> [N, D]
        return self.decoder(z) * self.scale + self.loc

    def forward(self, x, eps):  # eps: standard normal [N, K]
        mu, logvar = self.encode(x)
        z = mu + eps * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def _vae_loss(x_hat, x, mu, logvar, beta, scale):
    rec = (((x_hat - x) / scale) ** 2).sum(dim=1)  # [N], in standardised units
    kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1)  # [N]
    return (rec + beta * kl).mean()


def _standardisation(X):
    """Column means and standard deviations of ``X`` [N, D] (1 for constant columns)."""
    loc = X.mean(dim=0)
    scale = X.std(dim=0, unbiased=False)
    scale = torch.where(torch.isfinite(scale) & (scale > 0), scale, torch.ones_like(scale))
    return loc, scale


class REVISEGenerator(BaseGenerator):
    """REVISE generator (Joshi et al., 2019): gradient search in a VAE's latent space.

    ``fit`` trains a small VAE on the reference data (model input space, standardised inside
    the VAE so that features of any scale train well); the search starts at
    the encoder mean of the factual and updates the latent code ``z`` with the Generic objective
    evaluated on ``x' = decoder(z)`` (then projected onto the actionability constraints), so that
    counterfactuals stay on the data manifold the VAE learned.

    Parameters
    ----------
    step_size : float, default=0.1
        SGD step size in the latent space.
    lambda_cost : float, default=0.001
        Weight of the L1 distance between decoded counterfactual and factual.
    latent_dim : int, default=8
    hidden : int, default=64
    vae_epochs : int, default=50
    vae_lr : float, default=1e-3
    vae_batch_size : int, default=128
    beta : float, default=1.0
        Weight of the KL term of the VAE loss.
    random_state : int, RandomState or None, default=None
        Seeds the VAE's initialisation and training (generators of its own: concurrent fits
        in threads give the same VAE as a fit alone).
    one_hot : {"accumulate", "reharden"}, default="accumulate"
        ``"accumulate"``: the latent code moves freely and the decoded point is projected and
        hardened for the model only. ``"reharden"``: after every step the latent code is
        replaced by the encoding of its valid point: the decoded point with every one-hot
        group at its argmax level and the bounds applied, encoded again (the encoder mean),
        as CounterfactualExplanations.jl re-encodes its decoded, clamped state after every
        step (it draws from the encoder instead of taking its mean).

    Attributes
    ----------
    vae_ : TabularVAE
        The fitted autoencoder.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skct.search.generators import REVISEGenerator
    >>> X = np.random.RandomState(0).randn(200, 3).astype("float32")
    >>> gen = REVISEGenerator(vae_epochs=2, random_state=0).fit(X)
    >>> gen.vae_.decode(gen.vae_.encode(__import__("torch").as_tensor(X))[0]).shape
    torch.Size([200, 3])
    """

    _parameter_constraints = {
        **BaseGenerator._parameter_constraints,
        "latent_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "hidden": [Interval(numbers.Integral, 1, None, closed="left")],
        "vae_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "vae_lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "vae_batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "beta": [Interval(numbers.Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    latent = True

    def __init__(self, *, step_size=0.1, lambda_cost=0.001, latent_dim=8, hidden=64,
                 vae_epochs=50, vae_lr=1e-3, vae_batch_size=128, beta=1.0, random_state=None,
                 one_hot="accumulate"):
        super().__init__(step_size=step_size, lambda_cost=lambda_cost, one_hot=one_hot)
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.vae_epochs = vae_epochs
        self.vae_lr = vae_lr
        self.vae_batch_size = vae_batch_size
        self.beta = beta
        self.random_state = random_state

    def fit(self, X, y=None):
        """Train the VAE on reference data ``X`` (model input space).

        The VAE trains on standardised features (column means and standard deviations of
        ``X``) and maps its output back exactly, so features of any scale work. Its random
        numbers come from generators of its own, never from torch's process-wide one.

        Raises
        ------
        FloatingPointError
            If the VAE's training loss becomes non-finite (the search would only find NaN).
        """
        self._validate_params()
        X = validate_data(self, X, dtype=np.float32)  # 2D, finite in float32, not sparse
        if X.shape[0] < 2:
            raise ValueError(f"REVISEGenerator.fit needs at least two rows; got "
                             f"{X.shape[0]} sample.")
        X = torch.as_tensor(X)
        rng = check_random_state(self.random_state)
        gen = torch.Generator().manual_seed(int(rng.randint(0, 2**31 - 1)))
        init = torch.Generator().manual_seed(int(rng.randint(0, 2**31 - 1)))
        loc, scale = _standardisation(X)
        vae = TabularVAE(X.shape[1], self.latent_dim, self.hidden, loc=loc, scale=scale,
                         generator=init)
        loss = self._train_vae(vae, X, gen)
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"REVISEGenerator: the autoencoder's training loss became {loss} (X has values "
                f"up to {float(X.abs().max()):.3g}); lower vae_lr or check X for extreme "
                "values.")
        vae.eval()
        for p in vae.parameters():
            p.requires_grad_(False)
        self.vae_ = vae
        self.__dict__.pop("_vae_copies", None)  # copies of an earlier fit's autoencoder
        self.n_features_in_ = X.shape[1]
        return self

    def _train_vae(self, vae, X, gen):
        """Mini-batch Adam on the VAE loss; returns the last epoch's mean loss."""
        opt = torch.optim.Adam(vae.parameters(), lr=self.vae_lr)
        n = X.shape[0]
        vae.train()
        epoch_loss = float("nan")
        with torch.enable_grad():
            for _ in range(self.vae_epochs):
                perm = torch.randperm(n, generator=gen)
                total = 0.0
                for start in range(0, n, self.vae_batch_size):
                    xb = X[perm[start:start + self.vae_batch_size]]
                    eps = torch.randn(xb.shape[0], self.latent_dim, generator=gen)
                    x_hat, mu, logvar = vae(xb, eps)
                    loss = _vae_loss(x_hat, xb, mu, logvar, self.beta, vae.scale)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * xb.shape[0]
                epoch_loss = total / n
                if not math.isfinite(epoch_loss):
                    break
        return epoch_loss

    def init_state(self, x):
        vae = self._vae_for(x)
        with torch.no_grad():
            mu, _ = vae.encode(x)
        return mu

    def to_input(self, state, x, constraints: TorchConstraints):
        x_dec = self._vae_for(x).decode(state)
        x_dec = project(x_dec, x, constraints, hard=False)
        return straight_through_harden(x_dec, x, constraints)

    def update(self, state, grad, x, constraints: TorchConstraints):
        z = state.detach() - self.step_size * grad  # [N, K]
        if not self._rehardens():
            return z
        # CounterfactualExplanations.jl, src/counterfactuals/search.jl (update!,
        # apply_domain_constraints!): decode the stepped state, reconstruct the categorical
        # encodings, clamp to the domain, encode again
        vae = self._vae_for(x)
        with torch.no_grad():
            x_valid = reharden_groups(vae.decode(z), x, constraints)  # [N, D]
            mu, _ = vae.encode(x_valid)
        return mu

    def _vae_for(self, x):
        if not hasattr(self, "vae_"):
            raise RuntimeError(
                "REVISEGenerator is not fitted: call fit(X_reference) first (the explainer and "
                "the classifier do this for you)."
            )
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"REVISEGenerator was fitted on {self.n_features_in_} features, got {x.shape[1]}."
            )
        p = next(self.vae_.parameters())
        if p.device == x.device and p.dtype == x.dtype:
            return self.vae_
        # a search on another device or dtype uses a converted copy: ``Module.to`` works in
        # place, and the fitted ``vae_`` must stay as fit left it
        copies = self.__dict__.setdefault("_vae_copies", {})
        key = (str(x.device), x.dtype)
        if key not in copies:
            copies[key] = copy.deepcopy(self.vae_).to(device=x.device, dtype=x.dtype)
        return copies[key]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_vae_copies", None)  # derived from vae_, rebuilt on demand
        return state
