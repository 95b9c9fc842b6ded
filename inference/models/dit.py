"""Oasis DiT: the action-conditioned spatio-temporal diffusion transformer of Oasis 500M.

Papers: Oasis (Decart & Etched, 2024) on top of DiT (Peebles & Xie, "Scalable Diffusion Models
with Transformers", 2023), trained with per-frame noise levels as in Diffusion Forcing (Chen et
al., 2024). Layout, key names and numerics follow docs/oasis-model.md §1 and 3.

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
    # Affine-free LayerNorm, computed in float32 as under the reference's fp16 autocast. The
    # bfloat16 kernels already accumulate in float32, so only float16 is converted explicitly
    # (two copies per call were a visible share of a cached bf16 step on CPU).
    if x.dtype == torch.float16:
        return F.layer_norm(x.float(), (x.shape[-1],), eps=LN_EPS).to(x.dtype)
    return F.layer_norm(x, (x.shape[-1],), eps=LN_EPS)


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    # shift/scale are per frame (B,T,D); they broadcast over that frame's H*W tokens.
    return x * (1 + scale[:, :, None, None]) + shift[:, :, None, None]


def _gate(x: Tensor, g: Tensor) -> Tensor:
    return g[:, :, None, None] * x


def rotate_pairs(x: Tensor, rot: Tensor) -> Tensor:
    """Interleaved RoPE: (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin), in float32.

    rot is the complex table cos + i sin (..., d/2) that broadcasts over x's pairs: one complex
    multiply instead of the neg/stack/mul/mul/add of the real form (the cached engine step is
    bound by op count on CPU).
    """
    xf = x.float().unflatten(-1, (-1, 2))  # (..., d/2, 2)
    if xf.storage_offset() % 2 or any(st % 2 for st in xf.stride()[:-1]):
        xf = xf.contiguous()  # view_as_complex needs (real, imag) pairs on even strides
    turned = torch.view_as_complex(xf) * rot  # (..., d/2)
    return torch.view_as_real(turned).flatten(-2).to(x.dtype)


def rotation(angles: Tensor) -> Tensor:
    """Complex rotation table cos + i sin of float32 angles (..., d/2)."""
    return torch.polar(torch.ones_like(angles), angles)


def spatial_rope(freqs: Tensor, rows: int, cols: int) -> Tensor:
    """Rotation (N, d/2) of the axial 2-D rotary: first half of d by row, second half by column."""
    f = freqs.float()
    row_angles = torch.linspace(-1, 1, rows, device=f.device)[:, None] * f  # (H, d/4)
    col_angles = torch.linspace(-1, 1, cols, device=f.device)[:, None] * f  # (W, d/4)
    row_angles = row_angles[:, None].expand(rows, cols, -1)  # (H, W, d/4)
    col_angles = col_angles[None, :].expand(rows, cols, -1)  # (H, W, d/4)
    return rotation(torch.cat((row_angles, col_angles), dim=-1).flatten(0, 1))  # (N, d/2)


def temporal_rope(freqs: Tensor, positions: Tensor) -> Tensor:
    """Rotation (..., d/2) for integer window positions of any shape."""
    f = freqs.float()
    return rotation(positions.to(f.device, torch.float32)[..., None] * f)  # (..., d/2)


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

    def forward(self, x: Tensor, rot: Tensor) -> Tensor:
        B, T, H, W, D = x.shape
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (
            z.reshape(B * T, H * W, self.heads, -1).transpose(1, 2)  # (B*T, h, N, d)
            for z in (q, k, v)
        )
        q, k = rotate_pairs(q, rot), rotate_pairs(k, rot)
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
        self,
        x: Tensor,
        rot: Tensor,
        kv_sink: list | None = None,
        kv_only: bool = False,
    ) -> Tensor | None:
        """Whole-window path; kv_sink collects (k, v) (B*N, h, T, d); kv_only stops there."""
        B, T, H, W, D = x.shape
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (
            z.reshape(B, T, H * W, self.heads, -1)
            .permute(0, 2, 3, 1, 4)  # (B, N, h, T, d)
            .reshape(B * H * W, self.heads, T, -1)  # (B*N, h, T, d)
            for z in (q, k, v)
        )
        k, v = rotate_pairs(k, rot).contiguous(), v.contiguous()
        if kv_sink is not None:
            kv_sink.append((k, v))
        if kv_only:
            return None
        q = rotate_pairs(q, rot).contiguous()
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.reshape(B, H, W, self.heads, T, -1).permute(0, 4, 1, 2, 3, 5)  # (B,T,H,W,h,d)
        return self.to_out(y.reshape(B, T, H, W, D))  # (B, T, H, W, h*d)

    def forward_cached(
        self,
        x: Tensor,
        rot: Tensor,
        cache: tuple[Tensor, Tensor],
        slots: Tensor,
        mask: Tensor | None,
        span: int,
        ragged: bool,
    ) -> Tensor:
        """T new frames per row: writes their K/V at slots[b, j], attends slots < span.

        cache tensors are (B, N, h, L, d); rot is (B, 1, 1, T, d/2) for the frames' slots; mask
        (None when T == 1 and no row is ragged) says which slots each frame may see. Without
        ragged rows the frames fill slots span - T .. span - 1 of every row.
        """
        B, T, H, W, D = x.shape
        k_cache, v_cache = cache
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (
            z.reshape(B, T, H * W, self.heads, -1).permute(0, 2, 3, 1, 4)  # (B,N,h,T,d)
            for z in (q, k, v)
        )
        k = rotate_pairs(k, rot)
        if not ragged:  # a plain strided write, the engine's steady state
            k_cache[:, :, :, span - T : span] = k
            v_cache[:, :, :, span - T : span] = v
        else:
            rows = torch.arange(B, device=x.device)[:, None]  # (B, 1) with slots (B, T)
            k_cache[rows, :, :, slots] = k.permute(0, 3, 1, 2, 4)  # (B, T, N, h, d)
            v_cache[rows, :, :, slots] = v.permute(0, 3, 1, 2, 4)
        q = rotate_pairs(q, rot).reshape(B * H * W, self.heads, T, -1)  # (B*N, h, T, d)
        keys = k_cache.flatten(0, 1)[:, :, :span]  # (B*N, h, span, d)
        values = v_cache.flatten(0, 1)[:, :, :span]  # (B*N, h, span, d)
        # A query or two per row: an explicit softmax(qK^T)V beats the CPU SDPA kernels here
        # (2.5-4x per call in bf16, where SDPA's short-query path is slow). The products run in
        # the weight dtype (bf16 GEMMs accumulate in float32) and only the small score tensor
        # is converted: the softmax is always float32 and the cache is never copied.
        scale = q.shape[-1] ** -0.5
        scores = (q @ keys.transpose(-1, -2)).float() * scale  # (B*N, h, T, span)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        y = scores.softmax(dim=-1).to(x.dtype) @ values  # (B*N, h, T, d)
        y = y.reshape(B, H, W, self.heads, T, -1).permute(0, 4, 1, 2, 3, 5)  # (B,T,H,W,h,d)
        return self.to_out(y.reshape(B, T, H, W, D))  # (B, T, H, W, h*d)


class SpatioTemporalBlock(nn.Module):
    """Spatial attention, spatial MLP, temporal attention, temporal MLP; adaLN-modulated."""

    def __init__(
        self, dim: int, heads: int, mlp_ratio: float, s_rot: RotaryTable, t_rot: RotaryTable
    ):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.s_attn = SpatialAttention(dim, heads, s_rot)
        self.s_mlp = Mlp(dim, hidden)
        self.s_adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.t_attn = TemporalAttention(dim, heads, t_rot)
        self.t_mlp = Mlp(dim, hidden)
        self.t_adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def spatial(self, x: Tensor, c: Tensor, rope: Tensor) -> Tensor:
        """Both spatial sublayers (they never look across frames)."""
        sh_a, sc_a, g_a, sh_m, sc_m, g_m = self.s_adaLN_modulation(c).chunk(6, dim=-1)
        x = x + _gate(self.s_attn(_modulate(_ln(x), sh_a, sc_a), rope), g_a)
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

    def __init__(
        self,
        input_h: int = 18,
        input_w: int = 32,
        patch_size: int = 2,
        in_channels: int = 16,
        hidden_size: int = 1024,
        depth: int = 16,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        external_cond_dim: int = 25,
        max_frames: int = 32,
    ):
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
            SpatioTemporalBlock(
                hidden_size, num_heads, mlp_ratio, self.spatial_rotary_emb, self.temporal_rotary_emb
            )
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

    def _spatial_rope(self) -> Tensor:
        # Memoised: the table is constant per weight load, and rebuilding it costs a dozen
        # small ops per pass. _version changes whenever the freqs are written in place.
        freqs = self.spatial_rotary_emb.freqs
        key = (freqs.device, freqs.data_ptr(), freqs._version)
        if getattr(self, "_s_rope_key", None) != key:
            self._s_rope_key, self._s_rope = key, spatial_rope(freqs, *self.grid)
        return self._s_rope

    def _ropes(self, T: int, device: torch.device) -> tuple[Tensor, Tensor]:
        t = temporal_rope(self.temporal_rotary_emb.freqs, torch.arange(T, device=device))
        return self._spatial_rope(), t

    def forward(self, x: Tensor, t: Tensor, actions: Tensor) -> Tensor:
        """Whole-window forward (the reference path)."""
        tokens, c = self._embed(x, t, actions)
        s_rope, t_rope = self._ropes(x.shape[1], x.device)
        for block in self.blocks:
            tokens = block.spatial(tokens, c, s_rope)
            tokens = block.temporal(tokens, c, lambda z, b=block: b.t_attn(z, t_rope))
        return self._unpatchify(self.final_layer(tokens, c))

    def prefill_kv(self, x: Tensor, t: Tensor, actions: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Per block, the temporal (rotated k, v), each (B*N, h, T, d), of a whole window."""
        tokens, c = self._embed(x, t, actions)
        s_rope, t_rope = self._ropes(x.shape[1], x.device)
        kv: list[tuple[Tensor, Tensor]] = []
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            tokens = block.spatial(tokens, c, s_rope)
            tokens = block.temporal(
                tokens,
                c,
                lambda z, b=block, s=(i == last): b.t_attn(z, t_rope, kv_sink=kv, kv_only=s),
            )
        return kv

    def step_cached(
        self,
        x: Tensor,
        t: Tensor,
        actions: Tensor,
        cache: Sequence[tuple[Tensor, Tensor]],
        positions: Tensor,
        span: int,
        ragged: bool,
    ) -> Tensor:
        """T new frames per row, x (B,T,C,H,W), attending causally over cached context K/V.

        Row b's frames sit at window slots positions[b] + 0..T-1, their K/V written there in
        every block's cache (a later call with the same slots overwrites them); span is the
        highest slot + 1 over all rows, and ragged says whether rows differ in positions. The
        engine sends T = 2 on a frame's first step: the previous frame at the context level (its
        K/V commit) and the new noisy frame. Returns v of every row's last frame, (B,1,C,H,W).
        """
        B, T = x.shape[:2]
        tokens, c = self._embed(x, t, actions)
        s_rope = self._spatial_rope()
        slots = positions[:, None] + torch.arange(T, device=x.device)  # (B, T)
        t_rot = temporal_rope(self.temporal_rotary_emb.freqs, slots)  # (B, T, d/2)
        t_rot = t_rot[:, None, None]  # (B, 1, 1, T, d/2) over (B, N, h, T, d/2)
        mask = None
        if ragged or T > 1:
            seen = torch.arange(span, device=x.device) <= slots[..., None]  # (B, T, span)
            # (1, 1, T, span) broadcasts when rows agree; else one row per token: (B*N,1,T,span)
            tokens_per_frame = self.grid[0] * self.grid[1]
            mask = (
                seen.repeat_interleave(tokens_per_frame, dim=0)[:, None]
                if ragged
                else seen[:1, None]
            )
        for i, block in enumerate(self.blocks):
            tokens = block.spatial(tokens, c, s_rope)
            tokens = block.temporal(
                tokens,
                c,
                lambda z, b=block, j=i: b.t_attn.forward_cached(
                    z, t_rot, cache[j], slots, mask, span, ragged
                ),
            )
        last = slice(T - 1, T)  # only the newest frame's output is wanted
        return self._unpatchify(self.final_layer(tokens[:, last], c[:, last]))
