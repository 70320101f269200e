"""Data sets of the counterfactual training paper: synthetic generators and real-data loaders.

Synthetic sets are generated in code (``make_*``; ``variant="reference"`` gives the generators
the paper's code calls, MLJBase's through TaijaData.jl). Real sets are read from CSV/NPZ files
that are **not** shipped with the package (their licences differ); the loaders look for them in
a data directory, resolved in this order:

1. the ``data_home`` argument, when given (only that directory is searched);
2. else the environment variable ``SKCT_DATA_HOME``, when set and not empty (only that
   directory is searched);
3. else ``../shared/data`` relative to the current working directory, then ``shared/data``
   beside the repository that contains this package; the first one that holds the file wins.

A missing file raises a :class:`FileNotFoundError` that names every directory searched and the
file expected.

Every real loader returns a :class:`sklearn.utils.Bunch` whose ``target`` is 0/1 with 1 the
desirable outcome, plus the paper's immutable features and an *unfitted*
:class:`~sklearn.compose.ColumnTransformer` (``"num"``: standardisation, ``"cat"``: one-hot
encoding) that reproduces the paper's preprocessing once fitted on the training rows
(see :func:`train_test_split_paper`).
"""

from . import _home, _mnist, _registry, _split, _synthetic, _tabular
from ._home import *  # noqa: F401,F403
from ._mnist import *  # noqa: F401,F403
from ._registry import *  # noqa: F401,F403
from ._split import *  # noqa: F401,F403
from ._synthetic import *  # noqa: F401,F403
from ._tabular import *  # noqa: F401,F403

__all__ = sorted(_home.__all__ + _mnist.__all__ + _registry.__all__ + _split.__all__
                 + _synthetic.__all__ + _tabular.__all__)
