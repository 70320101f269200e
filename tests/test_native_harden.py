"""One-hot groups hardened natively (skct.search._native_harden): the torch code's results."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import skct
from skct.constraints import TorchConstraints
from skct.search import _native_harden
from skct.search._projection import harden_groups, reharden_groups, straight_through_harden

pytestmark = pytest.mark.skipif(_native_harden.library() is None,
                                reason=f"native code unavailable: {_native_harden.status()}")

# dyadic values: every sum of a group is exact, so the implicit level ties exactly as in torch
VALUES = [-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, float("nan")]


@st.composite
def _problems(draw):
    d = draw(st.integers(2, 24))
    perm = draw(st.permutations(range(d)))
    sizes, groups, k = draw(st.lists(st.integers(2, 6), max_size=4)), [], 0
    for size in sizes:  # groups of arbitrary, non-contiguous columns
        if k + size <= d:
            groups.append(sorted(perm[k:k + size]))
            k += size
    words = [draw(st.sampled_from(["both", "none", "increase", "decrease"])) for _ in range(d)]
    for g in groups:  # a group is mutable or not as a whole
        word = draw(st.sampled_from(["both", "none"]))
        for j in g:
            words[j] = word
    dropped = [draw(st.booleans()) for _ in groups]
    n = draw(st.integers(1, 30))
    pick = st.sampled_from(VALUES)
    x = np.array([[draw(pick) for _ in range(d)] for _ in range(n)], dtype=np.float64)
    ref = np.array([[draw(pick) for _ in range(d)] for _ in range(n)], dtype=np.float64)
    for i in range(n):  # factuals mostly at a valid level, sometimes the very same values
        for g in groups:
            if draw(st.booleans()):
                level = draw(st.integers(0, len(g)))
                ref[i, g] = [1.0 if j == level else 0.0 for j in range(len(g))]
            if draw(st.integers(0, 3)) == 0:
                x[i, g] = ref[i, g]
    return d, groups, words, dropped, x, ref


@settings(max_examples=150, deadline=None)
@given(problem=_problems(), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_same_as_the_torch_code(problem, dtype):
    d, groups, words, dropped, x, ref = problem
    c = TorchConstraints.from_arrays(np.full(d, -np.inf), np.full(d, np.inf), words, groups,
                                     dtype=dtype, group_has_dropped=dropped or None)
    x, ref = torch.as_tensor(x, dtype=dtype), torch.as_tensor(ref, dtype=dtype)
    if not c.has_groups:
        return
    assert _native_harden.applies(x, ref)
    with skct.config_context(fast_search=False):  # the torch code
        want, want_all = harden_groups(x, c, ref), harden_groups(x, c)
    got, got_all = harden_groups(x, c, ref), harden_groups(x, c)
    torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(got_all, want_all, rtol=0, atol=0, equal_nan=True)


def _adult_like():
    words = ["both"] * 4 + ["none"] * 3 + ["both"] * 5
    c = TorchConstraints.from_arrays(np.full(12, -3.0), np.full(12, 3.0), words,
                                     [[4, 5, 6], [7, 8, 9, 10, 11]],
                                     group_has_dropped=[False, True])
    g = torch.Generator().manual_seed(0)
    ref = torch.zeros(50, 12)
    ref[:, :4] = torch.randn(50, 4, generator=g)
    ref[torch.arange(50), 4 + torch.randint(0, 3, (50,), generator=g)] = 1.0
    ref[torch.arange(50), 7 + torch.randint(0, 5, (50,), generator=g)] = 1.0
    return c, ref, ref + 0.4 * torch.randn(50, 12, generator=g)


def test_the_searches_harden_alike():
    c, ref, x = _adult_like()
    with skct.config_context(fast_search=False):
        want = (straight_through_harden(x, ref, c), reharden_groups(x, ref, c))
    got = (straight_through_harden(x, ref, c), reharden_groups(x, ref, c))
    for a, b in zip(got, want):
        assert torch.equal(a, b)
    assert torch.equal(got[0][:, 4:7], ref[:, 4:7])  # the immutable group is the factual's


def test_inputs_untouched_and_gradients_keep_the_torch_code():
    c, ref, x = _adult_like()
    before = x.clone()
    out = harden_groups(x, c, ref)
    assert torch.equal(x, before) and out.data_ptr() != x.data_ptr()
    xg = x.clone().requires_grad_(True)  # a differentiable input: the torch code runs
    assert not _native_harden.applies(xg, ref)
    harden_groups(xg, c, ref).sum().backward()
    assert xg.grad is not None
    # a strided input is read correctly
    wide = torch.cat([x, x], dim=1)[:, ::2]
    assert torch.equal(harden_groups(wide, c, ref), harden_groups(wide.contiguous(), c, ref))
    # feature-major inputs (the fast search keeps its state so) and expanded factuals
    fm, ref_fm = x.t().contiguous().t(), ref.t().contiguous().t()
    assert torch.equal(harden_groups(fm, c, ref_fm), harden_groups(x, c, ref))
    one = ref[:1].expand(len(ref), -1)
    with skct.config_context(fast_search=False):
        want = harden_groups(x, c, one.contiguous())
    assert torch.equal(harden_groups(x, c, one), want)


def test_not_used_when_native_code_is_off(monkeypatch):
    c, ref, x = _adult_like()
    monkeypatch.setenv("SKCT_COMPILED_SEARCH", "aten")
    assert not _native_harden.applies(x, ref)
    monkeypatch.setenv("SKCT_COMPILED_SEARCH", "native")
    assert _native_harden.applies(x, ref)
    with skct.config_context(fast_search=False):
        assert not _native_harden.applies(x, ref)
