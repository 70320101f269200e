"""Shared fixtures: seeds, small float32 data, a tiny trained MLP, the data directory."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

#: The real data sets beside the project (../shared/data); CI always has them.
DATA_HOME = Path(os.environ.get("SKCT_DATA_HOME",
                                Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def data_home():
    return DATA_HOME


def make_blobs2d(n=200, sep=2.0, seed=0):
    """Two well separated Gaussian blobs in 2D (float32 X, int y)."""
    rng = np.random.RandomState(seed)
    X = np.r_[rng.randn(n // 2, 2) * 0.5 - sep, rng.randn(n - n // 2, 2) * 0.5 + sep]
    y = np.r_[np.zeros(n // 2), np.ones(n - n // 2)].astype(np.int64)
    return X.astype(np.float32), y


@pytest.fixture
def blobs():
    return make_blobs2d()


def train_mlp(X, y, hidden=16, epochs=200, lr=1e-2, seed=0):
    """A tiny MLP (returns logits) trained with full-batch Adam."""
    n_classes = int(np.max(y)) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(),
                                    torch.nn.Linear(hidden, n_classes))
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(Xt), yt).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model


@pytest.fixture
def tiny_mlp(blobs):
    X, y = blobs
    return train_mlp(X, y)
