"""Oasis ViT VAE ("vit-l-20-shallow-encoder"): a patch-20 ViT autoencoder with a KL bottleneck.

Paper: the Oasis 500M release (Decart & Etched, 2024); the encoder/decoder are plain pre-norm
ViT blocks (Dosovitskiy et al., 2021) around a diagonal-Gaussian latent as in latent diffusion
(Rombach et al., 2022). Layout and numerics follow docs/oasis-model.md §2 and 3.

Dimension letters: B batch, C latent channels, H/W patch-grid rows and columns, N = H*W tokens,
D width, h heads, d head dim, P patch size.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dit import rotate_pairs, rotation

logger = logging.getLogger(__name__)

LN_EPS = 1e-6
LOGVAR_RANGE = (-30.0, 20.0)


def vae_rope(head_dim: int, rows: int, cols: int) -> Tensor:
    """Rotation (N, head_dim // 4): axial pixel rotary on the first half of each head."""
    n_freqs = head_dim // 8
    freqs = torch.linspace(1.0, rows * cols / 2, n_freqs) * math.pi  # (head_dim/8,)
    row = torch.linspace(-1, 1, rows)[:, None] * freqs  # (H, d/8)
    col = torch.linspace(-1, 1, cols)[:, None] * freqs  # (W, d/8)
    row = row[:, None].expand(rows, cols, -1)  # (H, W, d/8)
    col = col[None, :].expand(rows, cols, -1)  # (H, W, d/8)
    return rotation(torch.cat((row, col), dim=-1).flatten(0, 1))  # (N, d/4) pairs


class PatchEmbed(nn.Module):
    """Conv patchify to row-major tokens: token = row * W + col."""

    def __init__(self, patch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, D, H, W) -> (B, N, D)


class Attention(nn.Module):
    """Bidirectional self-attention; rotary on the first half of each head's dims."""

    def __init__(self, dim: int, heads: int, rows: int, cols: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)
        # Non-persistent, as in the reference: the released file holds no rotary entries. Kept
        # as real (cos, sin) pairs: Module.to(float dtype) would drop a complex buffer's sines.
        rot = torch.view_as_real(vae_rope(dim // heads, rows, cols))  # (N, d/4, 2)
        self.register_buffer("rotary", rot, persistent=False)

    def _rotate(self, z: Tensor) -> Tensor:
        rot = 2 * self.rotary.shape[-2]  # rotated dims: the first half of each head
        table = torch.view_as_complex(self.rotary.float().contiguous())  # (N, d/4)
        turned = rotate_pairs(z[..., :rot], table)
        return torch.cat((turned, z[..., rot:]), dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        B, N, D = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (
            z.reshape(B, N, self.heads, -1).transpose(1, 2)  # (B, h, N, d)
            for z in (q, k, v)
        )
        y = F.scaled_dot_product_attention(self._rotate(q), self._rotate(k), v)  # (B, h, N, d)
        return self.proj(y.transpose(1, 2).reshape(B, N, D))  # (B, N, h*d)


class Mlp(nn.Module):
    """fc1 -> exact (erf) GELU -> fc2."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class AttentionBlock(nn.Module):
    """Pre-norm ViT block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, dim: int, heads: int, rows: int, cols: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads, rows, cols)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTAutoencoder(nn.Module):
    """Oasis ViT VAE: encode(images in [0,1]) -> (mean, logvar); decode(latents) -> [-1, 1]."""

    def __init__(
        self,
        latent_dim: int = 16,
        input_height: int = 360,
        input_width: int = 640,
        patch_size: int = 20,
        enc_dim: int = 1024,
        enc_depth: int = 6,
        enc_heads: int = 16,
        dec_dim: int = 1024,
        dec_depth: int = 12,
        dec_heads: int = 16,
    ):
        super().__init__()
        if input_height % patch_size or input_width % patch_size:
            raise ValueError("image size must be a multiple of patch_size")
        self.patch_size, self.latent_dim = patch_size, latent_dim
        self.image_size = (input_height, input_width)
        rows, cols = input_height // patch_size, input_width // patch_size
        self.grid = (rows, cols)
        self.patch_embed = PatchEmbed(patch_size, enc_dim)
        self.encoder = nn.ModuleList(
            AttentionBlock(enc_dim, enc_heads, rows, cols) for _ in range(enc_depth)
        )
        self.enc_norm = nn.LayerNorm(enc_dim, eps=LN_EPS)
        self.quant_conv = nn.Linear(enc_dim, 2 * latent_dim)
        self.post_quant_conv = nn.Linear(latent_dim, dec_dim)
        self.decoder = nn.ModuleList(
            AttentionBlock(dec_dim, dec_heads, rows, cols) for _ in range(dec_depth)
        )
        self.dec_norm = nn.LayerNorm(dec_dim, eps=LN_EPS)
        self.predictor = nn.Linear(dec_dim, 3 * patch_size * patch_size)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """xavier Linears with zero bias; LayerNorms at identity."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))  # (D, 3*P*P)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one frame's latent in the DiT's layout."""
        return (self.latent_dim, *self.grid)

    def encode(self, images01: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior of images (B,3,H,W) in [0,1] (mapped to [-1,1] first): mean, logvar (B,N,C)."""
        x = self.patch_embed(images01 * 2 - 1)  # (B, N, D)
        for block in self.encoder:
            x = block(x)
        moments = self.quant_conv(self.enc_norm(x))  # (B, N, 2C) = [mean | logvar]
        mean, logvar = moments.chunk(2, dim=2)
        return mean, logvar.clamp(*LOGVAR_RANGE)

    def decode(self, latents: Tensor) -> Tensor:
        """Token latents (B,N,C) -> images (B,3,H,W), roughly in [-1, 1]."""
        x = self.post_quant_conv(latents)  # (B, N, D)
        for block in self.decoder:
            x = block(x)
        x = self.predictor(self.dec_norm(x))  # (B, N, 3*P*P), channel j = c*P*P + py*P + px
        B, P = x.shape[0], self.patch_size
        rows, cols = self.grid
        x = x.reshape(B, rows, cols, 3, P, P)  # (B, H, W, 3, py, px)
        x = x.permute(0, 3, 1, 4, 2, 5)  # (B, 3, H, py, W, px)
        return x.reshape(B, 3, rows * P, cols * P)  # (B, 3, H*P, W*P)

    def encode_frames(self, images01: Tensor) -> Tensor:
        """Posterior mean of images in [0,1] as DiT frames (B, C, H, W); no sampling."""
        mean, _ = self.encode(images01)
        return mean.transpose(1, 2).unflatten(2, self.grid)  # (B, N, C) -> (B, C, H, W)

    def decode_frames(self, latents: Tensor) -> Tensor:
        """DiT-layout latents (B, C, H, W) -> images in [-1, 1]."""
        return self.decode(latents.flatten(2).transpose(1, 2))  # (B, C, H, W) -> (B, N, C)
