"""Phase 1: train the convolutional autoencoder (64x64 RGB -> 16x16x4) on recorded frames.

Loss: L1 + MSE on pixels, weighted up where a pixel differs from its 7x7 neighbourhood (the
player, mobs, tree trunks: the sprites a plain loss blurs away first; docs/cpu-budget.md), plus
a small KL that keeps the posterior from collapsing to a point. bf16 autocast + channels_last
(about 1.8x on this CPU). The phase ends by measuring the latent std, which becomes the
checkpoint's scaling factor so the DiT sees unit-variance latents.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import WorldConfig
from ..models import ConvAutoencoder, build_autoencoder
from .data import Recording, to_images
from .plots import plot_curves, save_grid
from .progress import Progress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AETrainConfig:
    """Autoencoder phase hyper-parameters (saved in ae.pt)."""

    steps: int = 12_000
    batch: int = 32
    lr: float = 1e-3
    kl_weight: float = 1e-5
    sprite_weight: float = 4.0
    save_every: int = 500
    minutes: float = 0.0  # > 0: also stop after this many wall-clock minutes


def psnr(a: Tensor, b: Tensor) -> Tensor:
    """Per-image PSNR in dB of images in [0,1] (B,3,H,W)."""
    mse = ((a.float() - b.float()) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(1 / mse)


def sprite_weights(images: Tensor, strength: float) -> Tensor:
    """(B,1,H,W) weights: 1 + strength where a pixel stands out from its neighbourhood."""
    local = F.avg_pool2d(images, 7, stride=1, padding=3, count_include_pad=False)
    detail = (images - local).abs().mean(1, keepdim=True)  # (B, 1, H, W)
    return 1 + strength * (detail / 0.1).clamp(max=1)


def ae_loss(ae: ConvAutoencoder, images: Tensor, cfg: AETrainConfig) -> tuple[Tensor, dict]:
    """Weighted L1+MSE reconstruction of a sampled latent, plus KL."""
    mean, logvar = ae.encode(images)
    z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
    recon = (ae.decode(z).float() + 1) / 2  # (B, 3, H, W) in [0, 1]
    w = sprite_weights(images, cfg.sprite_weight)
    err = recon - images
    rec = (w * (err.abs() + err**2)).mean()
    kl = 0.5 * (mean.float() ** 2 + logvar.float().exp() - 1 - logvar.float()).mean()
    return rec + cfg.kl_weight * kl, {"rec": rec.item(), "kl": kl.item()}


@torch.no_grad()
def reconstruct(ae: ConvAutoencoder, images: Tensor, batch: int = 256) -> Tensor:
    """Decode(posterior mean) in [0,1], batched."""
    out = [
        ((ae.decode(ae.encode(images[i : i + batch])[0]) + 1) / 2).clamp(0, 1)
        for i in range(0, len(images), batch)
    ]
    return torch.cat(out)


@torch.no_grad()
def encode_all(ae: ConvAutoencoder, frames: np.ndarray, scale: float, batch: int = 512) -> Tensor:
    """Scaled posterior means (N,C,h,w) float16 of uint8 frames (N,H,W,3)."""
    ae = ae.to(memory_format=torch.channels_last)  # about 2x for small convs on CPU
    out = []
    with Progress(len(frames), "encode") as bar:
        for i in range(0, len(frames), batch):
            images = to_images(frames[i : i + batch]).contiguous(memory_format=torch.channels_last)
            out.append((ae.encode(images)[0] * scale).half())
            bar.update(len(images))
    return torch.cat(out)


def train_autoencoder(
    run: Path,
    world: WorldConfig,
    train: Recording,
    test: Recording,
    cfg: AETrainConfig,
    seed: int = 0,
) -> dict:
    """Train (or resume) the AE phase; returns the final state dict of ae.pt."""
    path = run / "ae.pt"
    torch.manual_seed(seed)
    ae = build_autoencoder(world.autoencoder)
    assert isinstance(ae, ConvAutoencoder), "the training pipeline builds conv autoencoders"
    opt = torch.optim.AdamW(ae.parameters(), lr=cfg.lr, weight_decay=0.0)
    state = {"step": 0, "losses": [], "done": False, "cfg": asdict(cfg)}
    if path.exists():
        state = torch.load(path, weights_only=False)
        if state["done"]:  # finished, or seeded from an export (no optimizer state then)
            return state
        ae.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        logger.info("resumed autoencoder at step %d", state["step"])
    ae = ae.to(memory_format=torch.channels_last).train()
    gen = torch.Generator().manual_seed(seed + state["step"])
    started = time.monotonic()

    def save(done: bool) -> None:
        state.update(model=ae.state_dict(), opt=opt.state_dict(), done=done)
        torch.save(state, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)  # atomic: a kill mid-save keeps the old file

    with Progress(cfg.steps, "autoencoder", start=state["step"]) as bar:
        while state["step"] < cfg.steps:
            step = state["step"]
            for group in opt.param_groups:  # cosine decay to 5% over the phase
                group["lr"] = cfg.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * step / cfg.steps)))
            pick = torch.randint(len(train), (cfg.batch,), generator=gen).numpy()
            images = to_images(train.frames[pick]).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss, parts = ae_loss(ae, images, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state["step"] += 1
            state["losses"].append((state["step"], parts["rec"]))
            bar.update(1, loss=parts["rec"], kl=parts["kl"])
            out_of_time = cfg.minutes and time.monotonic() - started > cfg.minutes * 60
            if state["step"] % cfg.save_every == 0 or out_of_time:
                save(False)
            if out_of_time:
                logger.info("autoencoder time budget reached at step %d", state["step"])
                break
    ae.eval()
    images = to_images(test.frames[:: max(1, len(test) // 1000)])
    recon = reconstruct(ae, images)
    state["test_psnr"] = float(psnr(recon, images).mean())
    with torch.no_grad():
        latents = torch.cat([ae.encode(images[i : i + 256])[0] for i in range(0, len(images), 256)])
    state["scaling_factor"] = float(1 / latents.float().std())
    save(True)
    _ae_pngs(run, state, images, recon)
    logger.info(
        "autoencoder: test PSNR %.2f dB, latent scale %.3f",
        state["test_psnr"],
        state["scaling_factor"],
    )
    return state


def _ae_pngs(run: Path, state: dict, images: Tensor, recon: Tensor) -> None:
    plot_curves(
        run / "ae_loss.png",
        {"weighted L1+MSE": state["losses"]},
        f"autoencoder (test PSNR {state['test_psnr']:.2f} dB)",
    )
    pick = torch.linspace(0, len(images) - 1, 12).long()

    def u8(x: Tensor) -> list[np.ndarray]:
        return list((x[pick].permute(0, 2, 3, 1) * 255).round().byte().numpy())

    save_grid(run / "ae_samples.png", [u8(images), u8(recon)], ["held-out", "reconstructed"])


def load_trained_autoencoder(run: Path, world: WorldConfig) -> tuple[ConvAutoencoder, float]:
    """The finished AE of a run (eval mode, float32) and its latent scaling factor."""
    state = torch.load(run / "ae.pt", weights_only=False)
    if not state.get("done"):
        raise RuntimeError(f"{run / 'ae.pt'} is not finished (step {state['step']})")
    ae = build_autoencoder(world.autoencoder)
    ae.load_state_dict(state["model"])
    return copy.deepcopy(ae).eval(), state["scaling_factor"]


def finetune_decoder(
    run: Path,
    world: WorldConfig,
    train: Recording,
    test: Recording,
    steps: int,
    cfg: AETrainConfig,
    seed: int = 1,
) -> dict:
    """More decoder-only steps on a finished AE: sharper frames, same latents (the DiT stays valid).

    Resumable like the main phase: ae.pt counts the decoder steps done so far in "decoder_steps".
    """
    path = run / "ae.pt"
    state = torch.load(path, weights_only=False)
    ae = build_autoencoder(world.autoencoder)
    ae.load_state_dict(state["model"])
    ae.encoder.requires_grad_(False)  # frozen: the DiT was trained on these latents
    opt = torch.optim.AdamW(ae.decoder.parameters(), lr=cfg.lr * 0.3)
    if "decoder_opt" in state:
        opt.load_state_dict(state["decoder_opt"])
    done = state.get("decoder_steps", 0)
    gen = torch.Generator().manual_seed(seed + done)
    ae = ae.to(memory_format=torch.channels_last).train()
    with Progress(done + steps, "decoder", start=done) as bar:
        for step in range(done, done + steps):
            pick = torch.randint(len(train), (cfg.batch,), generator=gen).numpy()
            images = to_images(train.frames[pick]).contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                mean = ae.encode(images)[0]
            with torch.autocast("cpu", dtype=torch.bfloat16):
                recon = (ae.decode(mean).float() + 1) / 2
            err = recon - images
            loss = (sprite_weights(images, cfg.sprite_weight) * (err.abs() + err**2)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state["losses"].append((state["step"] + step + 1, loss.item()))
            bar.update(1, loss=loss.item())
            if (step + 1) % cfg.save_every == 0 or step + 1 == done + steps:
                state.update(
                    model=ae.state_dict(), decoder_opt=opt.state_dict(), decoder_steps=step + 1
                )
                torch.save(state, path.with_suffix(".tmp"))
                path.with_suffix(".tmp").replace(path)
    ae.eval()
    images = to_images(test.frames[:: max(1, len(test) // 1000)])
    recon = reconstruct(ae, images)
    state["test_psnr"] = float(psnr(recon, images).mean())
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    _ae_pngs(run, state, images, recon)
    logger.info("decoder fine-tune: test PSNR %.2f dB", state["test_psnr"])
    return state
