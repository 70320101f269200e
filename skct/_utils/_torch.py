"""Small torch helpers shared by every part of skct."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["eval_mode"]


@contextlib.contextmanager
def eval_mode(module):
    """Put a torch module (and all its children) in eval mode, restoring each flag afterwards."""
    if not isinstance(module, torch.nn.Module):
        yield module
        return
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, flag in modes:
            m.training = flag
