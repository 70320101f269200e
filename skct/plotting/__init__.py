"""Plots for counterfactual explanations and counterfactually trained models.

Three scikit-learn style Displays: ``XDisplay.from_*`` computes what is drawn and calls
:meth:`plot`; ``plot`` draws and keeps the matplotlib objects as attributes ending in ``_``
(``ax_``, ``figure_``, and the artists). The constructors take computed arrays only, so a plot
can be redrawn (or restyled) without recomputing anything.

- :class:`CounterfactualDisplay`: 2D data, the model's decision surface, counterfactuals as
  stars and their search paths (Figure 1 of the counterfactual training paper).
- :class:`ImageCounterfactualDisplay`: factual images and their counterfactuals per target class
  (the paper's MNIST figures).
- :class:`RobustnessCurveDisplay`: accuracy under an adversarial attack against its budget
  epsilon, for several models on one axis.

matplotlib is imported only when something is drawn (``pip install skct[plot]``).

Names in the figures (feature names, class labels, model names, titles) are shown as written:
a ``$`` is not read as mathematics.

- ``_counterfactual``: :class:`CounterfactualDisplay`; ``_images``:
  :class:`ImageCounterfactualDisplay`; ``_robustness``: :class:`RobustnessCurveDisplay`;
  ``_base``: what they share.
"""

from ._counterfactual import CounterfactualDisplay
from ._images import ImageCounterfactualDisplay
from ._robustness import RobustnessCurveDisplay

__all__ = ["CounterfactualDisplay", "ImageCounterfactualDisplay", "RobustnessCurveDisplay"]
