"""Training steps learn, phases resume, and the export loads in the engine and the runtime."""

from __future__ import annotations

import logging

import numpy as np
import torch

from inference.actions import get_action_space
from inference.engine import Engine
from inference.engine_runtime import EngineRuntime
from inference.models import build_autoencoder, build_dit
from inference.sampler import sigmoid_alphas_cumprod
from inference.training.data import Recording
from inference.training.train_ae import AETrainConfig, ae_loss, train_autoencoder
from inference.training.train_dit import (
    DiTTrainConfig,
    diffusion_loss,
    export_world,
    sample_levels,
    self_corrupt,
    train_dit,
)
from tests.inference.helpers import MINI

logger = logging.getLogger(__name__)


def tiny_recording(n: int = 64, seed: int = 0, segment: int = 32) -> Recording:
    rng = np.random.default_rng(seed)
    tiles = rng.integers(0, 255, (n, 4, 4, 3), dtype=np.uint8)
    frames = np.kron(tiles, np.ones((1, 4, 4, 1), np.uint8))  # (n, 16, 16, 3) blocky frames
    actions = rng.integers(0, 5, n)
    segments = np.arange(n) // segment
    names = tuple(f.name for f in get_action_space("crafter-17").fields)
    return Recording(frames, actions, segments, names)


def test_a_few_autoencoder_steps_reduce_the_loss():
    torch.manual_seed(0)
    ae = build_autoencoder(MINI.autoencoder)
    opt = torch.optim.AdamW(ae.parameters(), lr=3e-3)
    images = torch.from_numpy(tiny_recording(8).frames).permute(0, 3, 1, 2).float() / 255
    cfg = AETrainConfig()
    first = ae_loss(ae, images, cfg)[0].item()
    for _ in range(80):
        loss, _ = ae_loss(ae, images, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ae_loss(ae, images, cfg)[0].item() < 0.8 * first


def test_diffusion_forcing_steps_reduce_the_loss_on_a_tiny_batch():
    torch.manual_seed(0)
    dit = build_dit(MINI.dit)
    opt = torch.optim.AdamW(dit.parameters(), lr=1e-3)
    abar = sigmoid_alphas_cumprod()
    x0 = torch.randn(4, 4, 4, 4, 4)
    actions = torch.nn.functional.one_hot(torch.randint(0, 17, (4, 4)), 17).float()
    gen = torch.Generator().manual_seed(0)
    t, _ = sample_levels(4, 4, DiTTrainConfig(), gen)

    def loss_now() -> float:
        return diffusion_loss(dit, x0, actions, t, abar, 5.0, torch.Generator().manual_seed(1))

    first = loss_now().item()
    for _ in range(40):
        loss = loss_now()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss_now().item() < 0.7 * first


def test_noise_levels_give_play_shaped_clips_a_clean_prefix():
    cfg = DiTTrainConfig(play_prob=1.0, ctx_max_level=20)
    t, prefix = sample_levels(256, 8, cfg, torch.Generator().manual_seed(0))
    assert t.shape == (256, 8) and t.min() >= 0 and t.max() < 1000
    assert (t[:, 0] <= 20).all()  # every clip's first frame is context
    assert prefix[:, 0].all() and not prefix[:, -1].any()  # the last frame is never context
    assert (t[prefix] <= 20).all()
    mixed, _ = sample_levels(
        256, 8, DiTTrainConfig(play_prob=0.0), torch.Generator().manual_seed(0)
    )
    assert mixed[:, 0].float().mean() > 300  # pure Diffusion Forcing: uniform levels


def test_self_corrupted_history_replaces_only_context_frames_and_drops_their_loss():
    torch.manual_seed(0)
    ema = build_dit(MINI.dit).eval()
    abar = sigmoid_alphas_cumprod()
    x0 = torch.randn(8, 4, 4, 4, 4)
    actions = torch.nn.functional.one_hot(torch.randint(0, 17, (8, 4)), 17).float()
    cfg = DiTTrainConfig(play_prob=1.0, self_context_prob=1.0)
    t, prefix = sample_levels(8, 4, cfg, torch.Generator().manual_seed(0))
    out, skip = self_corrupt(ema, x0, actions, prefix, abar, cfg, torch.Generator().manual_seed(1))
    assert torch.equal(skip, prefix)  # every play-shaped clip, and only its context
    changed = (out - x0).flatten(2).abs().amax(-1) > 0  # (B, T)
    assert torch.equal(changed, prefix)
    # Frames marked skip add nothing to the loss: all of them marked, nothing is left.
    gen = torch.Generator().manual_seed(2)
    assert diffusion_loss(ema, out, actions, t, abar, 5.0, gen, skip=skip) > 0
    everything = torch.ones_like(skip)
    assert diffusion_loss(ema, out, actions, t, abar, 5.0, gen, skip=everything) == 0
    none = DiTTrainConfig(self_context_prob=0.0)
    same, nothing = self_corrupt(ema, x0, actions, prefix, abar, none, torch.Generator())
    assert same is x0 and not nothing.any()


def test_the_phases_resume_and_export_a_servable_checkpoint(tmp_path):
    train, test = tiny_recording(64, 0), tiny_recording(32, 1)
    space = get_action_space("crafter-17")
    ae_state = train_autoencoder(tmp_path, MINI, train, test, AETrainConfig(steps=4, batch=4))
    assert ae_state["done"] and ae_state["scaling_factor"] > 0
    assert (tmp_path / "ae_loss.png").exists() and (tmp_path / "ae_samples.png").exists()
    ae = build_autoencoder(MINI.autoencoder)
    ae.load_state_dict(ae_state["model"])
    with torch.no_grad():
        lat = {
            k: ae.encode(torch.from_numpy(r.frames).permute(0, 3, 1, 2).float() / 255)[0]
            for k, r in (("train", train), ("test", test))
        }
    cfg = DiTTrainConfig(steps=3, batch=2, clip=4, save_every=1)
    assert train_dit(tmp_path, MINI, space, train, test, lat, cfg)["step"] == 3
    resumed = train_dit(
        tmp_path, MINI, space, train, test, lat, DiTTrainConfig(steps=5, batch=2, clip=4)
    )
    assert resumed["step"] == 5 and len(resumed["losses"]) == 5
    assert (tmp_path / "dit_rollouts.png").exists()
    path = export_world(tmp_path, MINI, space, tmp_path / "out" / "world.safetensors")
    engine = Engine.from_checkpoint(path)
    assert engine.config.scaling_factor == ae_state["scaling_factor"]
    runtime = EngineRuntime(str(path), dtype="float32")
    runtime.start("s", test.frames[:2])
    assert runtime.step({"s": np.eye(17, dtype=np.float32)[1]})["s"].shape == (16, 16, 3)


def test_decoder_fine_tuning_keeps_the_latents(tmp_path):
    from inference.training.train_ae import finetune_decoder

    train, test = tiny_recording(64, 0), tiny_recording(32, 1)
    cfg = AETrainConfig(steps=3, batch=4)
    before = train_autoencoder(tmp_path, MINI, train, test, cfg)
    encoder = {k: v.clone() for k, v in before["model"].items() if k.startswith("encoder")}
    after = finetune_decoder(tmp_path, MINI, train, test, 5, cfg)
    assert after["decoder_steps"] == 5
    assert all(torch.equal(after["model"][k], v) for k, v in encoder.items())
    assert any(
        not torch.equal(after["model"][k], before["model"][k])
        for k in after["model"]
        if k.startswith("decoder")
    )


def test_the_loss_weighs_the_noisiest_frames_fully():
    # Every played frame starts at t = 999: its v-loss must not be weighted away.
    abar = sigmoid_alphas_cumprod()
    dit = build_dit(MINI.dit)  # outputs 0, so the loss is the weighted target energy
    x0 = torch.randn(8, 2, 4, 4, 4)
    actions = torch.zeros(8, 2, 17)
    noisy = diffusion_loss(dit, x0, actions, torch.full((8, 2), 999), abar, 5.0)
    clean = diffusion_loss(dit, x0, actions, torch.full((8, 2), 5), abar, 5.0)
    assert noisy.item() > 0.5 and clean.item() < 0.1 * noisy.item()


def test_frames_made_by_an_action_weigh_more_than_no_ops():
    abar = sigmoid_alphas_cumprod()
    dit = build_dit(MINI.dit)  # outputs 0: the loss is the weighted target energy
    x0 = torch.randn(8, 2, 4, 4, 4)
    t = torch.full((8, 2), 999)
    noop = torch.nn.functional.one_hot(torch.zeros(8, 2).long(), 17).float()
    move = torch.nn.functional.one_hot(torch.ones(8, 2).long(), 17).float()
    gen = torch.Generator

    def loss(actions, weight):
        return diffusion_loss(dit, x0, actions, t, abar, 5.0, gen().manual_seed(0), weight).item()

    assert loss(noop, 4.0) == loss(noop, 1.0)
    assert abs(loss(move, 4.0) - 4 * loss(move, 1.0)) < 1e-4 * loss(move, 1.0)
