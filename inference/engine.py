"""The production rollout engine: KV-cached, batched Oasis sampling for every live session.

Per session it keeps the last max_frames - 1 finished latents with their actions and, per DiT
block, the temporal keys/values of those context frames. Each denoising step then runs only the
new frame's tokens, attending over the cache. A finished frame's K/V must be written once at the
context noise level ("commit"); rather than spend a whole extra pass on it, the engine keeps the
newest finished frame pending and commits it in the next frame's first step, whose pass carries
two frames per session (pending at the context level, new at full noise; causal in time, so the
pending frame never sees the new one). A frame thus costs K passes instead of K + 1, with the
same arithmetic. Until the window slides this equals the reference loop in sampler.py to float
rounding (about 1e-6): context frames never see later frames and their inputs stay fixed.

Once the window is full, each new frame pushes the oldest out, which changes every context
frame's hidden state in blocks >= 1. Two policies:
- exact: recompute the context K/V once per frame (one whole-window pass), same as the reference;
- rolling: drop the oldest slot and shift the rest one position down (re-rotating the keys), an
  approximation whose drift bench/engine_vs_reference.py measures. (The pending frame is
  committed after the slide, so it never attends to the frame that just left the window.)

All live sessions step together: the cache is one tensor per block with a row per session,
shorter contexts are masked, and the noise comes from each session's own torch.Generator, so a
session's frames do not depend on who else is being served. The engine is not thread-safe: drive
it from one thread (the device's worker loop).

Dimension letters: S sessions (cache rows), C/H/W latent channels, height and width, N tokens per
frame, h heads, d head dim, L cache slots (= max_frames), A action dim.
"""

from __future__ import annotations

import copy
import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .actions import ActionInputError, ActionSpace, get_action_space
from .checkpoints import load_checkpoint, load_oasis_release
from .config import EngineOptions, WorldConfig, get_preset
from .models import Autoencoder, ConvAutoencoder, DiT, build_autoencoder, build_dit, randomize_
from .models.dit import rotate_pairs, temporal_rope
from .sampler import ddim_update, sigmoid_alphas_cumprod, step_levels

logger = logging.getLogger(__name__)


@dataclass
class _Session:
    id: str
    generator: torch.Generator
    latents: deque  # finished latents (C, H, W), float32, at most max_frames - 1
    actions: deque  # their action vectors (A,)
    length: int = 0  # context frames whose K/V sit in cache slots 0..length-1 (all but the last)
    stale: bool = True  # cache must be rebuilt from latents before the next step
    frames: int = 0  # frames generated so far


class Engine:
    """Batched, KV-cached world-model rollout; step() returns one uint8 RGB frame per session."""

    def __init__(
        self,
        config: WorldConfig,
        dit: DiT,
        autoencoder: Autoencoder,
        action_space: ActionSpace | None = None,
        options: EngineOptions | None = None,
    ):
        options = options or EngineOptions()
        if options.num_threads:
            torch.set_num_threads(options.num_threads)  # process-wide, by design of torch
        self.config, self.options = config, options
        self.device, self.dtype = torch.device(options.device), getattr(torch, options.dtype)
        self.window_mode = options.window_mode or config.sampling.window_mode
        if self.window_mode not in ("exact", "rolling"):
            raise ValueError(f"window_mode must be 'exact' or 'rolling', not {self.window_mode!r}")
        self.action_space = action_space or get_action_space(config.action_space)
        if self.action_space.dim != config.dit.external_cond_dim:
            raise ValueError(
                f"action space {self.action_space.name} has {self.action_space.dim}"
                f" dims; the DiT takes {config.dit.external_cond_dim}"
            )
        self.dit = dit.to(self.device, self.dtype).eval()
        # The decoder runs in float32 as in generate.py; it is a small share of the frame time.
        self.autoencoder = autoencoder.to(self.device, torch.float32).eval()
        # channels_last roughly halves a small conv decoder's time on CPU (docs/cpu-budget.md).
        self._channels_last = isinstance(autoencoder, ConvAutoencoder)
        if self._channels_last:
            self.autoencoder = self.autoencoder.to(memory_format=torch.channels_last)
        # A bf16 engine decodes a conv autoencoder's frames in bf16 too: on a CPU with bf16
        # instructions 4.9 -> 2.8 ms a frame, pixels within one level of 255 of float32. The
        # ViT autoencoder keeps float32, as Oasis's generate.py (and the parity fixture) do.
        self._decoder = None
        if self._channels_last and self.dtype == torch.bfloat16:
            self._decoder = copy.deepcopy(self.autoencoder.decoder).to(torch.bfloat16)
        self.window = config.dit.max_frames
        self.latent_shape = tuple(self.autoencoder.latent_shape)
        self._abar = sigmoid_alphas_cumprod(config.sampling.max_noise_level).to(self.device)
        self._levels = step_levels(config.sampling.ddim_steps, config.sampling.max_noise_level)
        self._ctx_levels, self._ctx_noise = self._context_levels(config)
        self._trajectory = config.sampling.trajectory_context
        if self._trajectory and self.window_mode != "rolling":
            raise ValueError(
                "trajectory_context needs window_mode 'rolling': 'exact' rebuilds the history"
                " from clean latents every frame, so no trajectory would survive"
            )
        # One K/V stream per distinct context level; cache lists hold stream after stream.
        self._streams = sorted(set(self._ctx_levels))
        self._step_fn = dit.step_cached
        if options.compile:
            self._step_fn = torch.compile(dit.step_cached, dynamic=True, mode=options.compile_mode)
        attn = dit.blocks[0].t_attn
        self._head = (attn.heads, attn.to_out.in_features // attn.heads)
        self._tokens = dit.grid[0] * dit.grid[1]
        self._sessions: dict[str, _Session] = {}
        self._order: list[str] = []  # session id of each cache row
        self._blocks = len(dit.blocks)
        self._cache = [self._empty_rows(0) for _ in range(len(self._streams) * self._blocks)]
        self.rejections: dict[str, str] = {}  # last step's refused inputs, by session id

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_checkpoint(
        cls,
        path,
        device: str = "cpu",
        dtype: str = "float32",
        sampling: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Engine:
        """An engine serving a Reverie checkpoint (see checkpoints.save_checkpoint).

        sampling overrides fields of the checkpoint's SamplingConfig (evaluations, benches).
        """
        world = load_checkpoint(path)
        config = world.config.with_sampling(**sampling) if sampling else world.config
        opts = EngineOptions(device=device, dtype=dtype, **options)
        return cls(config, world.dit, world.autoencoder, world.action_space, opts)

    @classmethod
    def from_oasis_release(
        cls, dit_path, vae_path, device: str = "cpu", dtype: str = "float32", **options: Any
    ) -> Engine:
        """An engine serving the public oasis500m.safetensors + vit-l-20.safetensors pair."""
        config, dit, vae = load_oasis_release(dit_path, vae_path)
        return cls(config, dit, vae, options=EngineOptions(device=device, dtype=dtype, **options))

    @classmethod
    def from_preset(cls, name: str, options: EngineOptions | None = None, seed: int = 0) -> Engine:
        """An engine with random weights at a preset's geometry (benchmarks, tests, demos)."""
        config = get_preset(name)
        dit = randomize_(build_dit(config.dit), seed)
        ae = randomize_(build_autoencoder(config.autoencoder), seed + 1)
        return cls(config, dit, ae, options=options)

    @staticmethod
    def _context_levels(config: WorldConfig) -> tuple[tuple[int, ...], bool]:
        """Per denoising pass, the level context frames are labelled with; whether they are
        also forward-diffused to it (a dynamic-noising schedule) or enter clean (generate.py)."""
        sampling = config.sampling
        schedule = tuple(int(level) for level in sampling.context_schedule)
        if sampling.trajectory_context:
            return Engine._trajectory_levels(config, schedule), True
        if not schedule:
            return (sampling.stabilization_level - 1,) * sampling.ddim_steps, False
        if len(schedule) != sampling.ddim_steps:
            raise ValueError(
                f"context_schedule {schedule} needs one level per denoising pass "
                f"({sampling.ddim_steps})"
            )
        if not all(0 <= level < sampling.max_noise_level for level in schedule):
            raise ValueError(
                f"context_schedule levels must lie in [0, "
                f"{sampling.max_noise_level}), got {schedule}"
            )
        return schedule, True

    @staticmethod
    def _trajectory_levels(config: WorldConfig, schedule: tuple[int, ...]) -> tuple[int, ...]:
        """The levels trajectory context reads, one per pass; see SamplingConfig.

        A noisy level must be the input level of a later pass (the one whose K/V make the new
        frame's entry in that stream, after every pass that reads it), and the schedule must
        end on the clean level, whose first pass commits the pending frame.
        """
        sampling = config.sampling
        levels = [level for level, _ in step_levels(sampling.ddim_steps, sampling.max_noise_level)]
        clean = sampling.stabilization_level - 1
        if clean in levels[1:]:
            raise ValueError(
                f"trajectory_context needs the clean context level {clean} (stabilization_level"
                f" - 1) to differ from the passes' input levels {levels[1:]}"
            )
        schedule = schedule or (*levels[1:], clean)
        if len(schedule) != len(levels) or schedule[-1] != clean:
            raise ValueError(
                f"a trajectory context_schedule needs one level per pass ({len(levels)}),"
                f" ending on the clean level {clean}; got {schedule}"
            )
        for k, level in enumerate(schedule):
            later = levels[k + 1 :]
            if level != clean and level not in later:
                raise ValueError(
                    f"trajectory context_schedule {schedule}: pass {k} can read the clean level"
                    f" {clean} or a later pass's input level {later}, not {level}"
                )
            if level == clean and any(x != clean for x in schedule[k:]):
                raise ValueError(
                    f"trajectory context_schedule {schedule}: once a pass reads the clean"
                    " context (and commits the pending frame there) the later ones must too"
                )
        return schedule

    def _stream(self, cache: list, level: int) -> list:
        """The blocks' (k, v) of the K/V stream that holds context at `level`."""
        g = self._streams.index(level)
        return cache[g * self._blocks : (g + 1) * self._blocks]

    def _empty_rows(self, rows: int) -> tuple[Tensor, Tensor]:
        heads, head_dim = self._head
        shape = (rows, self._tokens, heads, self.window, head_dim)  # (S, N, h, L, d)
        # Zeros, never empty(): masked slots still enter the A.V product, and 0 * NaN = NaN.
        return (
            torch.zeros(shape, device=self.device, dtype=self.dtype),
            torch.zeros(shape, device=self.device, dtype=self.dtype),
        )

    # -- sessions -------------------------------------------------------------------------

    @property
    def sessions(self) -> list[str]:
        """Live session ids in cache-row order."""
        return list(self._order)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of the frames step returns."""
        return self.config.image_size

    @property
    def action_names(self) -> tuple[str, ...]:
        """The model's actions in vector order."""
        return tuple(f.name for f in self.action_space.fields)

    def add_session(
        self,
        session_id: str,
        prompt_frames: Any = None,
        prompt_latents: Tensor | None = None,
        prompt_actions: Tensor | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        """Start a session from uint8 frames (P,H,W,3) or scaled latents (P,C,H,W).

        prompt_actions (P, A) default to zeros, as generate.py gives the prompt frame. The noise
        comes from generator, or a new one seeded with seed (random when both are None).
        """
        if session_id in self._sessions:
            raise ValueError(f"session {session_id} is already live")
        if (prompt_frames is None) == (prompt_latents is None):
            raise ValueError("give exactly one of prompt_frames and prompt_latents")
        if prompt_latents is None:
            prompt_latents = self.encode_frames(prompt_frames)
        latents = prompt_latents.to(self.device, torch.float32)
        if latents.dim() != 4 or tuple(latents.shape[1:]) != self.latent_shape or not len(latents):
            raise ValueError(
                f"prompt latents must be (P>=1, {self.latent_shape}), got {tuple(latents.shape)}"
            )
        if prompt_actions is None:
            prompt_actions = torch.zeros(len(latents), self.action_space.dim)
        actions = torch.as_tensor(prompt_actions).to(self.device, torch.float32)
        if actions.shape != (len(latents), self.action_space.dim):
            raise ValueError(f"prompt actions must be ({len(latents)}, {self.action_space.dim})")
        if generator is None:
            generator = torch.Generator(self.device)
            if seed is None:
                generator.seed()
            else:
                generator.manual_seed(seed)
        keep = self.window - 1
        self._sessions[session_id] = _Session(
            session_id,
            generator,
            deque(latents[-keep:], maxlen=keep),
            deque(actions[-keep:], maxlen=keep),
        )
        self._order.append(session_id)
        self._cache = [
            tuple(torch.cat((t, r)) for t, r in zip(kv, self._empty_rows(1), strict=True))
            for kv in self._cache
        ]
        # Prefill now, so the join costs the caller of add_session, not everyone's next frame.
        with torch.no_grad():
            self._rebuild_stale(
                [self._sessions[session_id]], [(k[-1:], v[-1:]) for k, v in self._cache]
            )  # views of the row
        logger.info("session %s joined with %d prompt frame(s)", session_id, len(latents))

    def remove_session(self, session_id: str) -> bool:
        """Stop a session and free its cache row; False (no error) if it was not live."""
        if self._sessions.pop(session_id, None) is None:
            return False
        row = self._order.index(session_id)
        self._order.pop(row)
        keep = torch.tensor(
            [i for i in range(len(self._order) + 1) if i != row],
            device=self.device,
            dtype=torch.long,
        )
        self._cache = [(k.index_select(0, keep), v.index_select(0, keep)) for k, v in self._cache]
        logger.info("session %s left", session_id)
        return True

    def cache_bytes_per_session(self) -> int:
        """Bytes of K/V cache one session holds (allocated for a full window)."""
        heads, head_dim = self._head
        per_block = 2 * self._tokens * heads * self.window * head_dim * self.dtype.itemsize
        return per_block * len(self._cache)

    # -- frames in and out -----------------------------------------------------------------

    @torch.no_grad()
    def encode_frames(self, frames: Any) -> Tensor:
        """uint8 RGB (P,H,W,3) -> scaled posterior means (P,C,H,W) (resized if needed)."""
        images = torch.as_tensor(np.asarray(frames), device=self.device)
        if images.dim() != 4 or images.shape[-1] != 3 or images.dtype != torch.uint8:
            raise ValueError(
                f"prompt frames must be uint8 (P,H,W,3), got {tuple(images.shape)} {images.dtype}"
            )
        images = images.permute(0, 3, 1, 2).float() / 255  # (P, 3, H, W) in [0, 1]
        size = self.config.image_size
        if tuple(images.shape[-2:]) != size:
            logger.info("resizing prompt from %s to %s", tuple(images.shape[-2:]), size)
            images = F.interpolate(images, size=size, mode="bilinear", antialias=True)
        return self.autoencoder.encode_frames(images) * self.config.scaling_factor

    @torch.no_grad()
    def decode_latents(self, latents: Tensor) -> np.ndarray:
        """Scaled latents (S,C,H,W) -> uint8 RGB (S,H,W,3), rounded down as generate.py does."""
        latents = latents.float() / self.config.scaling_factor
        if self._channels_last:
            latents = latents.contiguous(memory_format=torch.channels_last)
        if self._decoder is not None:
            images = self._decoder(latents.to(torch.bfloat16)).float()
        else:
            images = self.autoencoder.decode_frames(latents)
        images = ((images + 1) / 2).clamp(0, 1)
        frames = (images * 255).to(torch.uint8)  # truncation, like .byte() in generate.py
        return frames.permute(0, 2, 3, 1).contiguous().cpu().numpy()  # (S, 3, H, W) -> (S, H, W, 3)

    # -- stepping --------------------------------------------------------------------------

    def step(
        self, actions: Mapping[str, Any] | None = None, sessions: Iterable[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Advance sessions one frame (default: every live one); {session id: uint8 (H,W,3)}.

        actions maps session ids to an action vector (A,) (a worker's come from
        actions.ActionEncoder); a missing entry means no input. A malformed vector is replaced
        by the no-op action and recorded in self.rejections with its reason: it never fails the
        step.
        """
        ids, latents = self._advance(actions or {}, sessions)
        if not ids:
            return {}
        frames = self.decode_latents(latents)  # only the new frames are decoded
        return {sid: frames[i] for i, sid in enumerate(ids)}

    def step_latents(
        self, actions: Mapping[str, Any] | None = None, sessions: Iterable[str] | None = None
    ) -> dict[str, Tensor]:
        """Like step, but returns the new scaled latents (C,H,W) and skips decoding."""
        ids, latents = self._advance(actions or {}, sessions)
        return {sid: latents[i] for i, sid in enumerate(ids)}

    def warm(self) -> None:
        """One throwaway frame on a scratch session (first-call allocation, compilation)."""
        scratch = "__warm__"
        self.add_session(scratch, prompt_latents=torch.zeros((1, *self.latent_shape)), seed=0)
        try:
            self.step(sessions=[scratch])
        finally:
            self.remove_session(scratch)

    def _action_rows(self, ids: list[str], actions: Mapping[str, Any]) -> Tensor:
        self.rejections = {}
        rows = []
        for sid in ids:
            raw = actions.get(sid)
            try:
                if raw is None:
                    vec = self.action_space.zeros()
                else:
                    vec = self.action_space.check_vector(raw)
            except ActionInputError as exc:
                logger.warning("session %s: input refused: %s", sid, exc)
                self.rejections[sid] = str(exc)
                vec = self.action_space.zeros()
            rows.append(vec)
        return torch.stack(rows).to(self.device)  # (S, A)

    def _rebuild_stale(self, sessions: list[_Session], cache: list) -> None:
        # The cache holds every context frame but the last (pending) one, whose K/V the first
        # pass of the next frame writes. Sessions with the same length share one prefill pass.
        by_length: dict[int, list[int]] = {}
        for row, session in enumerate(sessions):
            if session.stale:
                by_length.setdefault(len(session.latents) - 1, []).append(row)
        for length, rows in by_length.items():
            group = [sessions[r] for r in rows]
            # Trajectory context keeps the pending frame in its noisy streams as well: there
            # it is forward-diffused like the rest, as no trajectory of the prompt exists.
            frames = length + 1 if self._trajectory else length
            if frames:
                x = torch.stack([torch.stack(list(s.latents)[:frames]) for s in group])
                a = torch.stack([torch.stack(list(s.actions)[:frames]) for s in group])
                eps = self._context_eps(x, group)  # x (g, T, C, H, W), a (g, T, A)
                index = torch.tensor(rows, device=self.device)
                for level in self._streams:
                    if self._trajectory and level == self._ctx_levels[-1]:
                        self._prefill(cache, index, level, x[:, :length], a[:, :length], None)
                    else:
                        self._prefill(cache, index, level, x, a, eps)
            for s in group:
                s.length, s.stale = length, False
            logger.debug("rebuilt %d-frame context for %s", length, [s.id for s in group])

    def _prefill(
        self, cache: list, index: Tensor, level: int, x: Tensor, a: Tensor, eps: Tensor | None
    ) -> None:
        """Write the K/V of context x (g,T,C,H,W) at `level` into slots :T of rows `index`."""
        g, frames = x.shape[:2]
        if not frames:
            return
        heads, head_dim = self._head
        t = torch.full((g, frames), level, dtype=torch.long, device=self.device)
        kv = self.dit.prefill_kv(self._noised(x, eps, level).to(self.dtype), t, a)
        shape = (g, self._tokens, heads, frames, head_dim)  # (g, N, h, T, d)
        for (k_cache, v_cache), (k, v) in zip(self._stream(cache, level), kv, strict=True):
            k_cache[index, :, :, :frames] = k.view(shape)  # (g*N, h, T, d) -> (g, N, h, T, d)
            v_cache[index, :, :, :frames] = v.view(shape)  # same

    def _context_eps(self, x: Tensor, sessions: list[_Session]) -> Tensor | None:
        """Each session's own noise (S,T,C,H,W) for context latents x, if they are noised.

        One draw per frame serves every stream, so the levels differ only in how much of it
        a stream mixes in.
        """
        if not self._ctx_noise:
            return None
        return torch.stack(
            [torch.randn(x.shape[1:], generator=s.generator, device=self.device) for s in sessions]
        )

    def _noised(self, x: Tensor, eps: Tensor | None, level: int) -> Tensor:
        """Context latents x forward-diffused to `level` with eps (unchanged when eps is None)."""
        if eps is None:
            return x
        abar = self._abar[level]
        return abar.sqrt() * x + (1 - abar).sqrt() * eps

    def _select(self, actions: Mapping[str, Any], sessions: Iterable[str] | None) -> list[str]:
        unknown = set(actions) - set(self._sessions)
        if sessions is not None:
            wanted = set(sessions)
            unknown |= wanted - set(self._sessions)
        if unknown:
            raise KeyError(f"sessions that are not live: {sorted(unknown)}")
        return list(self._order) if sessions is None else [s for s in self._order if s in wanted]

    @torch.no_grad()
    def _advance(
        self, actions: Mapping[str, Any], sessions: Iterable[str] | None
    ) -> tuple[list[str], Tensor | None]:
        ids = self._select(actions, sessions)
        if not ids:
            return [], None
        a = self._action_rows(ids, actions)[:, None]  # (S, 1, A)
        everyone = len(ids) == len(self._order)
        index = (
            None
            if everyone
            else torch.tensor([self._order.index(s) for s in ids], device=self.device)
        )
        # A subset works on gathered copies of its rows, written back after the frame.
        cache = self._cache if index is None else [(k[index], v[index]) for k, v in self._cache]
        group = [self._sessions[sid] for sid in ids]
        self._rebuild_stale(group, cache)
        denoise = self._denoise_trajectory if self._trajectory else self._denoise
        x = denoise(group, cache, a)
        if index is not None:
            for (k, v), (k_sub, v_sub) in zip(self._cache, cache, strict=True):
                k[index], v[index] = k_sub, v_sub
        return ids, x[:, 0]

    def _denoise(self, sessions: list[_Session], cache: list, a: Tensor) -> Tensor:
        S = len(sessions)
        positions = torch.tensor([s.length for s in sessions], device=self.device)  # pending
        ragged = len({s.length for s in sessions}) > 1
        span = int(positions.max()) + 2  # the pending frame, then the new one
        pending = torch.stack([s.latents[-1] for s in sessions])[:, None]  # (S, 1, C, H, W)
        eps = self._context_eps(pending, sessions)
        pending_a = torch.stack([s.actions[-1] for s in sessions])[:, None]  # (S, 1, A)
        first = self._ctx_levels[0]
        for level in self._streams:  # commit the pending frame into the other streams alone
            if level != first:
                t_ctx = torch.full((S, 1), level, dtype=torch.long, device=self.device)
                self._step_fn(
                    self._noised(pending, eps, level).to(self.dtype),
                    t_ctx,
                    pending_a,
                    self._stream(cache, level),
                    positions,
                    span - 1,
                    ragged,
                )
        t_ctx = torch.full((S, 1), first, dtype=torch.long, device=self.device)
        pending = self._noised(pending, eps, first)
        x = self._start_noise(sessions)
        steps = len(self._levels)
        for k, (level, level_next) in zip(range(steps, 0, -1), self._levels, strict=True):
            t = torch.full((S, 1), level, dtype=torch.long, device=self.device)
            stream = self._stream(cache, self._ctx_levels[steps - k])
            if k == steps:  # first step: commit the pending frame's K/V in the same pass
                both = self._in_front((pending, t_ctx, pending_a), (x, t, a))
                v = self._step_fn(*both, stream, positions, span, ragged)
            else:
                v = self._step_fn(x.to(self.dtype), t, a, stream, positions + 1, span, ragged)
            abar_next = torch.ones((), device=self.device) if k == 1 else self._abar[level_next]
            x = ddim_update(x, v.float(), self._abar[level], abar_next)
        self._finish(sessions, cache, x, a)
        return x

    def _in_front(
        self, pending: tuple[Tensor, Tensor, Tensor], new: tuple[Tensor, Tensor, Tensor]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(frames, levels, actions) of a two-frame pass: the pending frame, then the new one."""
        frames, levels, actions = (torch.cat(pair, 1) for pair in zip(pending, new, strict=True))
        return frames.to(self.dtype), levels, actions

    def _start_noise(self, sessions: list[_Session]) -> Tensor:
        """Each session's new frame at full noise, (S, 1, C, H, W), clamped as generate.py."""
        noise_max = self.config.sampling.noise_abs_max
        return torch.stack(
            [
                torch.randn(self.latent_shape, generator=s.generator, device=self.device)
                for s in sessions
            ]
        ).clamp(-noise_max, noise_max)[:, None]

    def _denoise_trajectory(self, sessions: list[_Session], cache: list, a: Tensor) -> Tensor:
        # Noisy streams hold the pending frame already (slot `length`), so the passes before
        # the first clean one carry the new frame alone; after pass k the new frame's K/V
        # (written into the stream that pass read) are copied into the stream of the pass's
        # own input level, if the schedule has one. The first pass that reads the clean stream
        # commits the pending frame there, two frames in one pass as in _denoise; causal in
        # time, so neither commit sees a frame from its future.
        S = len(sessions)
        positions = torch.tensor([s.length for s in sessions], device=self.device)  # pending
        ragged = len({s.length for s in sessions}) > 1
        span = int(positions.max()) + 2
        new_slot = positions + 1
        rows = torch.arange(S, device=self.device)
        clean = self._ctx_levels[-1]
        commit = self._ctx_levels.index(clean)
        x = self._start_noise(sessions)
        steps = len(self._levels)
        for k, (level, level_next) in enumerate(self._levels):
            t = torch.full((S, 1), level, dtype=torch.long, device=self.device)
            stream = self._stream(cache, self._ctx_levels[k])
            if k == commit:
                pending = torch.stack([s.latents[-1] for s in sessions])[:, None]  # (S,1,C,H,W)
                pending_a = torch.stack([s.actions[-1] for s in sessions])[:, None]  # (S,1,A)
                t_ctx = torch.full((S, 1), clean, dtype=torch.long, device=self.device)
                both = self._in_front((pending, t_ctx, pending_a), (x, t, a))
                v = self._step_fn(*both, stream, positions, span, ragged)
            else:
                v = self._step_fn(x.to(self.dtype), t, a, stream, new_slot, span, ragged)
            if k and level in self._streams:  # this frame's entry at its pass-k input level
                target = self._stream(cache, level)
                for (k_dst, v_dst), (k_src, v_src) in zip(target, stream, strict=True):
                    k_dst[rows, :, :, new_slot] = k_src[rows, :, :, new_slot]  # (S, N, h, d)
                    v_dst[rows, :, :, new_slot] = v_src[rows, :, :, new_slot]
            last = k == steps - 1
            abar_next = torch.ones((), device=self.device) if last else self._abar[level_next]
            x = ddim_update(x, v.float(), self._abar[level], abar_next)
        self._finish(sessions, cache, x, a)
        return x

    def _finish(self, sessions: list[_Session], cache: list, x: Tensor, a: Tensor) -> None:
        # The pending frame's K/V are in the cache now; the new frame becomes the pending one.
        slide_rows = []
        for row, s in enumerate(sessions):
            full = len(s.latents) == s.latents.maxlen
            s.latents.append(x[row, 0])  # a full deque drops its oldest frame ...
            s.actions.append(a[row, 0])
            s.frames += 1
            s.length += 1
            if not full:
                continue
            if self.window_mode == "exact":  # ... so the cached context must follow
                s.stale = True
            else:
                slide_rows.append(row)
                s.length -= 1
        if slide_rows:
            self._slide(cache, torch.tensor(slide_rows, device=self.device))

    def _slide(self, cache: list, rows: Tensor) -> None:
        # Rolling window: drop slot 0 and move slots 1..L-1 down one position. RoPE scores
        # depend only on position differences, so rotating every key back by one step keeps
        # the cache consistent with window-relative positions.
        back = temporal_rope(
            self.dit.temporal_rotary_emb.freqs, torch.tensor(-1, device=self.device)
        )  # (d/2,)
        for k_cache, v_cache in cache:
            k_cache[rows, :, :, :-1] = rotate_pairs(k_cache[rows, :, :, 1:], back)
            v_cache[rows, :, :, :-1] = v_cache[rows, :, :, 1:]
