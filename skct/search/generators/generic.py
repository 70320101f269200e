"""Generic (Wachter-style) gradient counterfactual generator."""

from ._base import BaseGenerator

__all__ = ["GenericGenerator"]


class GenericGenerator(BaseGenerator):
    """Generic counterfactual generator: cross-entropy toward the target + L1 cost.

    Minimises ``CE(logits(x'), y+) + lambda_cost * sum_d w_d |x'_d - x_d|`` by gradient descent
    in the input space, as in Wachter et al. (2017) with an L1 cost; the weights ``w`` are the
    constraints' ``cost_weight`` (1 unless set).

    Parameters
    ----------
    step_size : float, default=0.25
        SGD step size.
    lambda_cost : float, default=0.001
        Weight of the (weighted) L1 cost.
    one_hot : {"accumulate", "reharden"}, default="accumulate"
        One-hot groups between steps: soft changes accumulate, or the state is rehardened
        after every step (see :class:`~skct.search.generators.BaseGenerator`).

    Examples
    --------
    >>> from skct.search.generators import GenericGenerator
    >>> GenericGenerator(step_size=0.1).step_size
    0.1
    """

    def __init__(self, *, step_size=0.25, lambda_cost=0.001, one_hot="accumulate"):
        super().__init__(step_size=step_size, lambda_cost=lambda_cost, one_hot=one_hot)
