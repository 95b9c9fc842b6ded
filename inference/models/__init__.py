"""Model families of the world model: the Oasis DiT and two autoencoders."""

from __future__ import annotations

import dataclasses
import logging
import math

import torch
from torch import nn

from ..config import ConvAutoencoderConfig, DiTConfig, ViTAutoencoderConfig
from .conv_autoencoder import ConvAutoencoder
from .dit import DiT
from .vit_autoencoder import ViTAutoencoder

logger = logging.getLogger(__name__)

Autoencoder = ViTAutoencoder | ConvAutoencoder

__all__ = [
    "Autoencoder",
    "ConvAutoencoder",
    "DiT",
    "ViTAutoencoder",
    "build_autoencoder",
    "build_dit",
    "randomize_",
]


def build_dit(cfg: DiTConfig) -> DiT:
    """A DiT from its config (reference initialisation: outputs exactly 0 until trained)."""
    return DiT(**dataclasses.asdict(cfg))


def build_autoencoder(cfg: ViTAutoencoderConfig | ConvAutoencoderConfig) -> Autoencoder:
    """The autoencoder class the config names."""
    if isinstance(cfg, ViTAutoencoderConfig):
        return ViTAutoencoder(**dataclasses.asdict(cfg))
    return ConvAutoencoder(**dataclasses.asdict(cfg))


@torch.no_grad()
def randomize_(
    module: nn.Module, seed: int = 0, bias_std: float = 0.02, std: float | None = None
) -> nn.Module:
    """Re-draw every trainable parameter at random (weights ~ N(0, 1/fan_in)).

    Random-weight tests and benchmarks need this: the reference init zeroes every adaLN and the
    final layer, so a fresh DiT is an identity that would hide most bugs. Frozen tables (the
    rotary frequencies) are left alone. With std set, every parameter is N(0, std) instead,
    the way tests/fixtures/oasis-tiny was drawn (std 0.02).
    """
    gen = torch.Generator().manual_seed(seed)
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        if std is not None:
            fresh = torch.randn(param.shape, generator=gen) * std
        elif param.dim() == 1:
            is_norm_gain = name.endswith("weight")  # LayerNorm gains stay near 1
            fresh = torch.randn(param.shape, generator=gen) * bias_std + float(is_norm_gain)
        else:
            fan_in = math.prod(param.shape[1:])
            fresh = torch.randn(param.shape, generator=gen) / math.sqrt(fan_in)
        param.copy_(fresh.to(param.dtype))
    return module
