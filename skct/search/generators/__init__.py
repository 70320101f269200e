"""Counterfactual generators: pluggable objectives (and search spaces) for the search engine."""

from sklearn.base import clone

from ._base import BaseGenerator
from .ecco import ECCoGenerator
from .eccco import ECCCoGenerator
from .generic import GenericGenerator
from .revise import REVISEGenerator

__all__ = ["BaseGenerator", "GenericGenerator", "ECCoGenerator", "ECCCoGenerator",
           "REVISEGenerator", "GENERATORS", "resolve_generator"]

#: Generators selectable by name.
GENERATORS = {"generic": GenericGenerator, "ecco": ECCoGenerator, "eccco": ECCCoGenerator,
              "revise": REVISEGenerator}


def resolve_generator(generator, param="generator", **defaults):
    """Return a fresh generator object from a name or a generator instance.

    Names build the registered class with ``defaults`` (only those it accepts); an instance is
    cloned so the caller's object is never fitted or changed.
    """
    if isinstance(generator, str):
        try:
            cls = GENERATORS[generator.lower()]
        except KeyError:
            raise ValueError(
                f"{param}: unknown generator {generator!r}; choose one of {sorted(GENERATORS)} "
                "or pass a BaseGenerator instance."
            ) from None
        accepted = cls().get_params()
        return cls(**{k: v for k, v in defaults.items() if k in accepted})
    if isinstance(generator, BaseGenerator):
        return clone(generator)
    raise TypeError(
        f"{param}: expected a generator name {sorted(GENERATORS)} or a BaseGenerator instance, "
        f"got {type(generator).__name__}."
    )
