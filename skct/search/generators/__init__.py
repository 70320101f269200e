"""Counterfactual generators: pluggable objectives (and search spaces) for the search engine."""

from sklearn.base import clone

from ._base import BaseGenerator
from .._gradient_free import GradientFreeGenerator
from .ecco import ECCoGenerator
from .eccco import ECCCoGenerator
from .generic import GenericGenerator
from .revise import REVISEGenerator

__all__ = ["BaseGenerator", "GenericGenerator", "ECCoGenerator", "ECCCoGenerator",
           "REVISEGenerator", "GradientFreeGenerator", "GENERATORS",
           "GRADIENT_FREE_GENERATORS", "resolve_generator"]

#: Generators selectable by name.
GENERATORS = {"generic": GenericGenerator, "ecco": ECCoGenerator, "eccco": ECCCoGenerator,
              "revise": REVISEGenerator}

#: Generators that need no gradients (any classifier with ``predict_proba``), by name.
GRADIENT_FREE_GENERATORS = {"gradient_free": GradientFreeGenerator}


def resolve_generator(generator, param="generator", **defaults):
    """Return a fresh generator object from a name or a generator instance.

    Names build the registered class with ``defaults`` (only those it accepts); an instance is
    cloned so the caller's object is never fitted or changed.
    """
    if isinstance(generator, str):
        names = {**GENERATORS, **GRADIENT_FREE_GENERATORS}
        try:
            cls = names[generator.lower()]
        except KeyError:
            raise ValueError(
                f"{param}: unknown generator {generator!r}; choose one of {sorted(names)} "
                "or pass a BaseGenerator instance."
            ) from None
        accepted = cls().get_params()
        return cls(**{k: v for k, v in defaults.items() if k in accepted})
    if isinstance(generator, BaseGenerator):
        return clone(generator)
    raise TypeError(
        f"{param}: expected a generator name {sorted({**GENERATORS, **GRADIENT_FREE_GENERATORS})}"
        " or a BaseGenerator instance, "
        f"got {type(generator).__name__}."
    )
