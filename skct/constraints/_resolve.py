"""Resolution of the feature keys a user writes (names or indices) to column indices."""

from __future__ import annotations

import numbers
import re

__all__ = ["feature_label", "resolve_feature"]


def feature_label(names, j):
    """How column ``j`` is named in messages: its name, or its index."""
    return repr(str(names[j])) if names is not None else f"index {j}"


def _shown(names):
    return names if len(names) <= 12 else names[:12] + ["..."]


def resolve_feature(key, names, n_features, param):
    """Resolve one user key to a list of column indices.

    Integers index columns directly. Strings match a column name exactly, then a
    ``ColumnTransformer`` output name ``"<transformer>__<key>"``, then a one-hot group
    ``"[<transformer>__]<key>_<level>"``. Returns ``(indices, is_group)``.

    When the one-hot pattern matches columns of several transformers (``"job"`` finds
    ``"cat__job_a"``, ``"cat__job_b"`` and ``"num__job_years"``), the transformer with at least
    two matching columns is the group; a single match elsewhere is another column's name.

    Examples
    --------
    >>> names = ["num__age", "cat__job_a", "cat__job_b", "num__job_years"]
    >>> resolve_feature("job", names, 4, "mutability")
    ([1, 2], True)
    >>> resolve_feature("job_years", names, 4, "mutability")
    ([3], False)
    """
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        if not -n_features <= key < n_features:
            raise ValueError(
                f"{param}: feature index {key} is out of range for {n_features} features."
            )
        return [int(key) % n_features], False
    if not isinstance(key, str):
        raise TypeError(f"{param}: features are named by str or int, got {key!r}.")
    if names is None:
        raise ValueError(
            f"{param}: feature {key!r} is given by name but the data passed to fit has no "
            "feature names (pass a pandas DataFrame or use integer indices)."
        )
    names = [str(n) for n in names]
    if key in names:
        return [names.index(key)], False
    suffix = [j for j, n in enumerate(names) if n.split("__", 1)[-1] == key]
    if len(suffix) == 1:
        return suffix, False
    if len(suffix) > 1:
        raise ValueError(
            f"{param}: feature {key!r} is ambiguous, it matches columns "
            f"{[names[j] for j in suffix]}; use the full column name."
        )
    group = _onehot_match(key, names, param)
    if group:
        return group, True
    raise ValueError(f"{param}: unknown feature {key!r}; the data has columns {_shown(names)}.")


def _onehot_match(key, names, param):
    pattern = re.compile(r"^(?:(.+?)__)?" + re.escape(key) + r"_.+$")
    by_prefix = {}
    for j, n in enumerate(names):
        m = pattern.match(n)
        if m:
            by_prefix.setdefault(m.group(1), []).append(j)
    if len(by_prefix) <= 1:
        return next(iter(by_prefix.values()), [])
    groups = {p: idx for p, idx in by_prefix.items() if len(idx) >= 2}
    if len(groups) == 1:
        return next(iter(groups.values()))
    raise ValueError(
        f"{param}: feature {key!r} matches one-hot columns of several transformers "
        f"{sorted(str(p) for p in (groups or by_prefix) if p)}; use the full column names."
    )
