"""World-model configurations: dataclasses plus a dict of named presets.

A preset fixes everything a checkpoint must agree with (network shapes, latent geometry, sampling
schedule, action space). Runtime choices that do not change the weights (device, dtype,
torch.compile, thread count) live in EngineOptions so the same checkpoint runs anywhere.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

logger = logging.getLogger(__name__)

WindowMode = Literal["exact", "rolling"]


@dataclass(frozen=True)
class DiTConfig:
    """Keyword arguments of the Oasis DiT, named as in the reference constructor."""

    input_h: int = 18
    input_w: int = 32
    patch_size: int = 2
    in_channels: int = 16
    hidden_size: int = 1024
    depth: int = 16
    num_heads: int = 16
    mlp_ratio: float = 4.0
    external_cond_dim: int = 25
    max_frames: int = 32

    @property
    def tokens_per_frame(self) -> int:
        """Tokens one latent frame turns into after patchifying."""
        return (self.input_h // self.patch_size) * (self.input_w // self.patch_size)


@dataclass(frozen=True)
class ViTAutoencoderConfig:
    """Keyword arguments of the Oasis ViT VAE ("vit-l-20-shallow-encoder")."""

    latent_dim: int = 16
    input_height: int = 360
    input_width: int = 640
    patch_size: int = 20
    enc_dim: int = 1024
    enc_depth: int = 6
    enc_heads: int = 16
    dec_dim: int = 1024
    dec_depth: int = 12
    dec_heads: int = 16


@dataclass(frozen=True)
class ConvAutoencoderConfig:
    """Small convolutional autoencoder for the CPU default: each stage halves the resolution."""

    image_height: int = 64
    image_width: int = 64
    latent_channels: int = 4
    channels: tuple[int, ...] = (32, 64, 128)  # len(channels) - 1 downsamplings: f = 4


@dataclass(frozen=True)
class SamplingConfig:
    """The Oasis sampling procedure (docs/oasis-model.md §4); defaults are generate.py's."""

    ddim_steps: int = 10
    max_noise_level: int = 1000
    stabilization_level: int = 15  # context frames are labelled stabilization_level - 1
    # Dynamic noising (Oasis's "dynamic noising"): one context noise level per denoising pass,
    # first pass first. Empty (generate.py): context latents enter clean, labelled
    # stabilization_level - 1. Given: before pass k the context is forward-diffused to level
    # context_schedule[k] and labelled so, e.g. (300, 100, 15) hides a history's errors from the
    # early passes and shows its detail to the late ones. Each distinct level keeps its own K/V
    # cache (one extra one-frame pass per frame each); measured in long_session.py.
    context_schedule: tuple[int, ...] = ()
    # Trajectory context: dynamic noising at no extra pass. Each denoising pass of a frame
    # already computes that frame's K/V at the pass's input level; the engine keeps them as the
    # frame's entry in a context stream of that level, so later frames' early passes read the
    # history as it looked while being denoised (noisy, its errors hidden) and the late ones
    # the clean, committed history. context_schedule then names the level each pass reads:
    # a later pass's input level or, from some pass on, stabilization_level - 1 (clean); empty
    # means every pass reads the next pass's input level and the last the clean one, e.g.
    # (665, 332, 100) at 3 steps. Needs the rolling window (exact rebuilds the history from
    # clean latents every frame).
    trajectory_context: bool = False
    noise_abs_max: float = 20.0
    window_mode: WindowMode = "exact"  # what the engine does once the window slides
    fps: int = 20


@dataclass(frozen=True)
class WorldConfig:
    """Everything a checkpoint needs so that loading it never guesses."""

    name: str
    dit: DiTConfig
    autoencoder: ViTAutoencoderConfig | ConvAutoencoderConfig
    scaling_factor: float
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    action_space: str = "oasis-25"

    @property
    def autoencoder_kind(self) -> str:
        """'vit' or 'conv': which autoencoder class the config builds."""
        return "vit" if isinstance(self.autoencoder, ViTAutoencoderConfig) else "conv"

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the RGB frames the world produces."""
        ae = self.autoencoder
        if isinstance(ae, ViTAutoencoderConfig):
            return ae.input_height, ae.input_width
        return ae.image_height, ae.image_width

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the form stored in checkpoint metadata)."""
        data = dataclasses.asdict(self)
        data["autoencoder_kind"] = self.autoencoder_kind
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorldConfig:
        """Inverse of to_dict; unknown or missing fields raise TypeError/KeyError."""
        kind = data["autoencoder_kind"]
        ae_cls = {"vit": ViTAutoencoderConfig, "conv": ConvAutoencoderConfig}[kind]
        ae_fields = dict(data["autoencoder"])
        if "channels" in ae_fields:
            ae_fields["channels"] = tuple(ae_fields["channels"])  # JSON turns tuples into lists
        return cls(
            name=data["name"],
            dit=DiTConfig(**data["dit"]),
            autoencoder=ae_cls(**ae_fields),
            scaling_factor=float(data["scaling_factor"]),
            sampling=SamplingConfig(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in data["sampling"].items()}
            ),
            action_space=data["action_space"],
        )

    def replace(self, **changes: Any) -> WorldConfig:
        """Copy with top-level fields replaced (dataclasses.replace)."""
        return dataclasses.replace(self, **changes)

    def with_sampling(self, **changes: Any) -> WorldConfig:
        """Copy with sampling fields replaced (ddim_steps=3, stabilization_level=...)."""
        return self.replace(sampling=dataclasses.replace(self.sampling, **changes))


@dataclass(frozen=True)
class EngineOptions:
    """Runtime switches that do not change the weights."""

    device: str = "cpu"
    dtype: str = "float32"  # "bfloat16" on CPUs with avx512_bf16 or on GPU; "float16" on GPU
    compile: bool = False  # torch.compile the cached step; about a minute to warm on 2 cores
    compile_mode: str | None = None  # e.g. "reduce-overhead": CUDA graphs on GPU (untested here)
    num_threads: int | None = None  # None leaves torch's setting alone
    window_mode: WindowMode | None = None  # None: the model's SamplingConfig.window_mode


PRESETS: dict[str, WorldConfig] = {
    # The public checkpoint (oasis500m.safetensors + vit-l-20.safetensors): docs/oasis-model.md.
    "oasis-500m": WorldConfig(
        name="oasis-500m",
        dit=DiTConfig(),
        autoencoder=ViTAutoencoderConfig(),
        scaling_factor=0.07843137255,
        sampling=SamplingConfig(ddim_steps=10, window_mode="exact", fps=20),
        action_space="oasis-25",
    ),
    # CPU default (docs/cpu-budget.md): 64x64 frames, conv AE f=4 -> 16x16x4 latent,
    # patch 2 -> 64 tokens/frame, d=192. The note's "depth 6" counts 3 spatial + 3 temporal
    # blocks; an Oasis block holds one of each, so depth=3 here (4.2 M parameters).
    "small": WorldConfig(
        name="small",
        dit=DiTConfig(
            input_h=16,
            input_w=16,
            patch_size=2,
            in_channels=4,
            hidden_size=192,
            depth=3,
            num_heads=3,
            mlp_ratio=4.0,
            external_cond_dim=17,
            max_frames=8,
        ),
        autoencoder=ConvAutoencoderConfig(
            image_height=64, image_width=64, latent_channels=4, channels=(32, 64, 128)
        ),
        scaling_factor=1.0,
        # 20 fps with a key repeat of 4 frames (inference/cadence.py): 5 Crafter moves a second.
        # 3 DDIM steps: the trained model scores the same as with 4 (evaluate.py, DiT step
        # 12,879) and only 3 keep 20 fps in a browser that shares the two cores.
        sampling=SamplingConfig(ddim_steps=3, window_mode="rolling", fps=20),
        action_space="crafter-17",
    ),
    # Tests: the geometry of tests/fixtures/oasis-tiny (reference classes at a tiny size).
    "tiny": WorldConfig(
        name="tiny",
        dit=DiTConfig(
            input_h=6,
            input_w=8,
            patch_size=2,
            in_channels=16,
            hidden_size=64,
            depth=2,
            num_heads=4,
            mlp_ratio=4.0,
            external_cond_dim=25,
            max_frames=4,
        ),
        autoencoder=ViTAutoencoderConfig(
            latent_dim=16,
            input_height=120,
            input_width=160,
            patch_size=20,
            enc_dim=64,
            enc_depth=1,
            enc_heads=4,
            dec_dim=64,
            dec_depth=2,
            dec_heads=4,
        ),
        scaling_factor=0.07843137255,
        sampling=SamplingConfig(ddim_steps=3, window_mode="exact", fps=20),
        action_space="oasis-25",
    ),
}


def get_preset(name: str) -> WorldConfig:
    """The named preset; a KeyError lists the known names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown world preset {name!r}; known: {sorted(PRESETS)}") from None
