"""Oasis DiT: the action-conditioned spatio-temporal diffusion transformer of Oasis 500M.

Papers: Oasis (Decart & Etched, 2024) on top of DiT (Peebles & Xie, "Scalable Diffusion Models
with Transformers", 2023), trained with per-frame noise levels as in Diffusion Forcing (Chen et
al., 2024). Layout, key names and numerics follow shared/specs/oasis-500m.md sections 1 and 3.

Dimension letters: B batch, T frames, C latent channels, H/W patch-grid rows and columns,
N = H*W tokens per frame, D width, h heads, d head dim, A action dim, L temporal-cache slots.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

logger = logging.getLogger(__name__)

LN_EPS = 1e-6
TIMESTEP_FREQ_DIM = 256


def _ln(x: Tensor) -> Tensor:
    # Affine-free LayerNorm, computed in float32 as under the reference's fp16 autocast.
    return F.layer_norm(x.float(), (x.shape[-1],), eps=LN_EPS).to(x.dtype)


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    # shift/scale are per frame (B,T,D); they broadcast over that frame's H*W tokens.
    return x * (1 + scale[:, :, None, None]) + shift[:, :, None, None]


def _gate(x: Tensor, g: Tensor) -> Tensor:
    return g[:, :, None, None] * x


def rotate_pairs(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Interleaved RoPE: (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin), in float32."""
    xf = x.float()
    pairs = xf.unflatten(-1, (-1, 2))  # (..., d/2, 2)
    x0, x1 = pairs.unbind(-1)
    turned = torch.stack((-x1, x0), dim=-1).flatten(-2)  # (..., d)
    return (xf * cos + turned * sin).to(x.dtype)


def spatial_rope(freqs: Tensor, rows: int, cols: int) -> tuple[Tensor, Tensor]:
    """cos/sin (N, d) of the axial 2-D rotary: first half of d by row, second half by column."""
    f = freqs.float()
    row_angles = torch.linspace(-1, 1, rows, device=f.device)[:, None] * f  # (H, d/4)
    col_angles = torch.linspace(-1, 1, cols, device=f.device)[:, None] * f  # (W, d/4)
    row_angles = row_angles.repeat_interleave(2, dim=-1)[:, None].expand(rows, cols, -1)
    col_angles = col_angles.repeat_interleave(2, dim=-1)[None, :].expand(rows, cols, -1)
    angles = torch.cat((row_angles, col_angles), dim=-1).flatten(0, 1)  # (N, d)
    return angles.cos(), angles.sin()


def temporal_rope(freqs: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
    """cos/sin (..., d) for integer window positions of any shape."""
    f = freqs.float()
    angles = positions.to(f.device, torch.float32)[..., None] * f  # (..., d/2)
    angles = angles.repeat_interleave(2, dim=-1)  # (..., d)
    return angles.cos(), angles.sin()


def spatial_rotary_freqs(head_dim: int) -> Tensor:
    """Analytic spatial table: pi * linspace(1, 128, head_dim // 4) ("pixel" frequencies)."""
    return torch.linspace(1.0, 256 / 2, head_dim // 4) * math.pi


def temporal_rotary_freqs(head_dim: int) -> Tensor:
    """Analytic temporal table: 10000^(-2k/head_dim) for k < head_dim/2."""
    return 1.0 / (10000 ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))


class RotaryTable(nn.Module):
    """Holds one frequency table; a single instance is shared by every block, as in Oasis."""

    def __init__(self, freqs: Tensor):
        super().__init__()
        self.freqs = nn.Parameter(freqs, requires_grad=False)


class PatchEmbed(nn.Module):
    """Per-frame 2-D patchify convolution."""

    def __init__(self, patch: int, in_channels: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)


class TimestepEmbedder(nn.Module):
    """Sinusoid of the integer noise level (cos first) -> Linear -> SiLU -> Linear."""

    def __init__(self, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(TIMESTEP_FREQ_DIM, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        half = TIMESTEP_FREQ_DIM // 2
        k = torch.arange(start=0, end=half, dtype=torch.float32, device=t.device)
        freqs = torch.exp(-math.log(10000) * k / half)
        args = t[:, None].float() * freqs[None]  # (B*T, 128)
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


class Mlp(nn.Module):
    """fc1 -> tanh-approximated GELU -> fc2."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class SpatialAttention(nn.Module):
    """Bidirectional attention among the N tokens of each frame."""

    def __init__(self, dim: int, heads: int, rotary: RotaryTable):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)
        self.rotary_emb = rotary

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        B, T, H, W, D = x.shape
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (
            z.reshape(B * T, H * W, self.heads, -1).transpose(1, 2)  # (B*T, h, N, d)
            for z in (q, k, v)
        )
        q, k = rotate_pairs(q, cos, sin), rotate_pairs(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=False)  # (B*T, h, N, d)
        y = y.transpose(1, 2).reshape(B, T, H, W, D)  # (B, T, H, W, h*d)
        return self.to_out(y)


class TemporalAttention(nn.Module):
    """Causal attention over time at each spatial location (batch B*N, sequence T)."""

    def __init__(self, dim: int, heads: int, rotary: RotaryTable):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)
        self.rotary_emb = rotary

    def forward(
        self, x: Tensor, cos: Tensor, sin: Tensor, kv_sink: list | None = None,
        kv_only: bool = False,
    ) -> Tensor | None:
        """Whole-window path; kv_sink collects (k, v) (B*N, h, T, d); kv_only stops there."""
        B, T, H, W, D = x.shape
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (
            z.reshape(B, T, H * W, self.heads, -1).permute(0, 2, 3, 1, 4)  # (B, N, h, T, d)
            .reshape(B * H * W, self.heads, T, -1)  # (B*N, h, T, d)
            for z in (q, k, v)
        )
        k, v = rotate_pairs(k, cos, sin).contiguous(), v.contiguous()
        if kv_sink is not None:
            kv_sink.append((k, v))
        if kv_only:
            return None
        q = rotate_pairs(q, cos, sin).contiguous()
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.reshape(B, H, W, self.heads, T, -1).permute(0, 4, 1, 2, 3, 5)  # (B,T,H,W,h,d)
        return self.to_out(y.reshape(B, T, H, W, D))  # (B, T, H, W, h*d)

    def forward_cached(
        self, x: Tensor, cos: Tensor, sin: Tensor, cache: tuple[Tensor, Tensor],
        positions: Tensor, mask: Tensor | None, span: int, kv_only: bool = False,
    ) -> Tensor | None:
        """One new frame per row: writes its K/V at slot positions[b], attends slots < span.

        cache tensors are (B, N, h, L, d); cos/sin are (B, 1, 1, d) for the rows' positions.
        """
        B, _, H, W, D = x.shape
        k_cache, v_cache = cache
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (z.reshape(B, H * W, self.heads, -1) for z in (q, k, v))  # (B, N, h, d)
        rows = torch.arange(B, device=x.device)
        k_cache[rows, :, :, positions] = rotate_pairs(k, cos, sin)
        v_cache[rows, :, :, positions] = v
        if kv_only:
            return None
        q = rotate_pairs(q, cos, sin).reshape(B * H * W, self.heads, 1, -1)  # (B*N, h, 1, d)
        keys = k_cache.flatten(0, 1)[:, :, :span]  # (B*N, h, span, d)
        values = v_cache.flatten(0, 1)[:, :, :span]  # (B*N, h, span, d)
        # One query per row: an explicit float32 softmax(qK^T)V beats the CPU SDPA kernels
        # here (2.5-4x per call in bf16, where SDPA's single-query path is slow; about 15% of
        # a 4-session bf16 frame) and keeps the scores in float32 whatever the weight dtype.
        scores = q.float() @ keys.float().transpose(-1, -2) * q.shape[-1] ** -0.5  # (B*N,h,1,span)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        y = (scores.softmax(dim=-1) @ values.float()).to(x.dtype)  # (B*N, h, 1, d)
        return self.to_out(y.reshape(B, 1, H, W, D))  # (B, 1, H, W, h*d)


class SpatioTemporalBlock(nn.Module):
    """Spatial attention, spatial MLP, temporal attention, temporal MLP; adaLN-modulated."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, s_rot: RotaryTable,
                 t_rot: RotaryTable):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.s_attn = SpatialAttention(dim, heads, s_rot)
        self.s_mlp = Mlp(dim, hidden)
        self.s_adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.t_attn = TemporalAttention(dim, heads, t_rot)
        self.t_mlp = Mlp(dim, hidden)
        self.t_adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def spatial(self, x: Tensor, c: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        """Both spatial sublayers (they never look across frames)."""
        sh_a, sc_a, g_a, sh_m, sc_m, g_m = self.s_adaLN_modulation(c).chunk(6, dim=-1)
        x = x + _gate(self.s_attn(_modulate(_ln(x), sh_a, sc_a), *rope), g_a)
        return x + _gate(self.s_mlp(_modulate(_ln(x), sh_m, sc_m)), g_m)

    def temporal(self, x: Tensor, c: Tensor, attend) -> Tensor | None:
        """Both temporal sublayers; attend(normed x) runs the attention or returns None."""
        sh_a, sc_a, g_a, sh_m, sc_m, g_m = self.t_adaLN_modulation(c).chunk(6, dim=-1)
        y = attend(_modulate(_ln(x), sh_a, sc_a))
        if y is None:
            return None
        x = x + _gate(y, g_a)
        return x + _gate(self.t_mlp(_modulate(_ln(x), sh_m, sc_m)), g_m)


class FinalLayer(nn.Module):
    """adaLN (shift, then scale) -> Linear to patch*patch*C values per token."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, out_dim)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(_modulate(_ln(x), shift, scale))


class DiT(nn.Module):
    """Oasis DiT: (x (B,T,C,H,W), t (B,T) int64, actions (B,T,A)) -> v-prediction like x."""

    def __init__(self, input_h: int = 18, input_w: int = 32, patch_size: int = 2,
                 in_channels: int = 16, hidden_size: int = 1024, depth: int = 16,
                 num_heads: int = 16, mlp_ratio: float = 4.0, external_cond_dim: int = 25,
                 max_frames: int = 32):
        super().__init__()
        if hidden_size % num_heads or (hidden_size // num_heads) % 4:
            raise ValueError("hidden_size / num_heads must be a multiple of 4 for the rotary")
        self.patch_size, self.in_channels, self.max_frames = patch_size, in_channels, max_frames
        self.grid = (input_h // patch_size, input_w // patch_size)
        head_dim = hidden_size // num_heads
        self.x_embedder = PatchEmbed(patch_size, in_channels, hidden_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.spatial_rotary_emb = RotaryTable(spatial_rotary_freqs(head_dim))
        self.temporal_rotary_emb = RotaryTable(temporal_rotary_freqs(head_dim))
        self.external_cond = nn.Linear(external_cond_dim, hidden_size)
        self.blocks = nn.ModuleList(
            SpatioTemporalBlock(hidden_size, num_heads, mlp_ratio, self.spatial_rotary_emb,
                                self.temporal_rotary_emb)
            for _ in range(depth)
        )
        self.final_layer = FinalLayer(hidden_size, patch_size * patch_size * in_channels)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """Reference init: xavier Linears, N(0, 0.02) t_embedder, zeroed adaLN and final layer."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))  # (D, C*p*p): xavier on the flat kernel
        nn.init.zeros_(self.x_embedder.proj.bias)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        # Zeroed adaLN and output: a fresh DiT outputs exactly 0 and every block is an identity
        # (tests and benchmarks re-draw everything with models.randomize_).
        for block in self.blocks:
            for ada in (block.s_adaLN_modulation[-1], block.t_adaLN_modulation[-1]):
                nn.init.zeros_(ada.weight)
                nn.init.zeros_(ada.bias)
        for lin in (self.final_layer.adaLN_modulation[-1], self.final_layer.linear):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def _embed(self, x: Tensor, t: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        B, T = x.shape[:2]
        dtype = self.x_embedder.proj.weight.dtype
        tokens = self.x_embedder.proj(x.flatten(0, 1).to(dtype))  # (B*T, D, H, W)
        tokens = tokens.permute(0, 2, 3, 1).unflatten(0, (B, T))  # (B, T, H, W, D)
        c = self.t_embedder(t.flatten()).unflatten(0, (B, T))  # (B, T, D)
        return tokens, c + self.external_cond(actions.to(dtype))

    def _unpatchify(self, x: Tensor) -> Tensor:
        B, T, H, W, _ = x.shape
        p, C = self.patch_size, self.in_channels
        x = x.reshape(B, T, H, W, p, p, C)  # channel j = (py*p + px)*C + c
        x = x.permute(0, 1, 6, 2, 4, 3, 5)  # (B, T, C, H, py, W, px)
        return x.reshape(B, T, C, H * p, W * p)  # (B, T, C, H*p, W*p)

    def _spatial_rope(self) -> tuple[Tensor, Tensor]:
        # Memoised: the table is constant per weight load, and rebuilding it costs a dozen
        # small ops per pass. _version changes whenever the freqs are written in place.
        freqs = self.spatial_rotary_emb.freqs
        key = (freqs.device, freqs.data_ptr(), freqs._version)
        if getattr(self, "_s_rope_key", None) != key:
            self._s_rope_key, self._s_rope = key, spatial_rope(freqs, *self.grid)
        return self._s_rope

    def _ropes(self, T: int, device: torch.device) -> tuple[tuple, tuple]:
        t = temporal_rope(self.temporal_rotary_emb.freqs, torch.arange(T, device=device))
        return self._spatial_rope(), t

    def forward(self, x: Tensor, t: Tensor, actions: Tensor) -> Tensor:
        """Whole-window forward (the reference path)."""
        tokens, c = self._embed(x, t, actions)
        s_rope, t_rope = self._ropes(x.shape[1], x.device)
        for block in self.blocks:
            tokens = block.spatial(tokens, c, s_rope)
            tokens = block.temporal(tokens, c, lambda z, b=block: b.t_attn(z, *t_rope))
        return self._unpatchify(self.final_layer(tokens, c))

    def prefill_kv(self, x: Tensor, t: Tensor, actions: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Per block, the temporal (rotated k, v), each (B*N, h, T, d), of a whole window."""
        tokens, c = self._embed(x, t, actions)
        s_rope, t_rope = self._ropes(x.shape[1], x.device)
        kv: list[tuple[Tensor, Tensor]] = []
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            tokens = block.spatial(tokens, c, s_rope)
            tokens = block.temporal(tokens, c, lambda z, b=block, s=(i == last): (
                b.t_attn(z, *t_rope, kv_sink=kv, kv_only=s)))
        return kv

    def step_cached(
        self, x: Tensor, t: Tensor, actions: Tensor, cache: Sequence[tuple[Tensor, Tensor]],
        positions: Tensor, mask: Tensor | None, span: int, kv_only: bool = False,
    ) -> Tensor | None:
        """One new frame per row, x (B,1,C,H,W), attending over cached context K/V.

        Row b's frame sits at window position positions[b]; its K/V are written to that slot of
        every block's cache, so a later call with the same slot overwrites them. kv_only stops
        after the last block's K/V are written (the commit pass) and returns None.
        """
        tokens, c = self._embed(x, t, actions)
        s_rope = self._spatial_rope()
        cos, sin = temporal_rope(self.temporal_rotary_emb.freqs, positions)  # (B, d)
        cos, sin = cos[:, None, None], sin[:, None, None]  # (B, 1, 1, d) over (B, N, h, d)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            stop = kv_only and i == last
            tokens = block.spatial(tokens, c, s_rope)
            tokens = block.temporal(tokens, c, lambda z, b=block, j=i, s=stop: (
                b.t_attn.forward_cached(z, cos, sin, cache[j], positions, mask, span, s)))
        if kv_only:
            return None
        return self._unpatchify(self.final_layer(tokens, c))
