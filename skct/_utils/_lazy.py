"""A dense view built on first read, for results that store something more compact."""

from __future__ import annotations

__all__ = ["dense_path_property"]


def dense_path_property(doc):
    """A ``path`` property for a dataclass whose ``path`` field may hold a compact path.

    The value set (by the dataclass constructor or later) is kept as it is; reading ``path``
    returns it unchanged unless it has a ``to_dense()`` method (a compact path object), whose
    dense array is built on the first read and kept until ``path`` is set again.
    """

    def get(self):
        p = self.__dict__.get("_path")
        if not hasattr(p, "to_dense"):
            return p
        if "_path_dense" not in self.__dict__:
            self.__dict__["_path_dense"] = p.to_dense()
        return self.__dict__["_path_dense"]

    def set(self, value):
        self.__dict__["_path"] = value
        self.__dict__.pop("_path_dense", None)

    return property(get, set, doc=doc)
