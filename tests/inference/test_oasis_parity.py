"""Parity with the reference: tests/fixtures/oasis-tiny, key tables of docs/oasis-model.md §3."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from inference.checkpoints import load_dit_weights, load_vae_weights
from inference.config import get_preset
from inference.models import DiT, ViTAutoencoder, build_autoencoder, build_dit

TOL = 1e-5


@pytest.fixture(scope="module")
def tiny(oasis_tiny_dir):
    config = json.loads((oasis_tiny_dir / "config.json").read_text())
    dit = load_dit_weights(DiT(**config["dit"]), oasis_tiny_dir / "dit.safetensors").eval()
    vae = load_vae_weights(ViTAutoencoder(**config["vae"]), oasis_tiny_dir / "vae.safetensors")
    parity = load_file(oasis_tiny_dir / "parity.safetensors")
    return dit, vae.eval(), parity


def test_dit_forward_matches_the_reference_output(tiny):
    dit, _, p = tiny
    with torch.no_grad():
        v = dit(p["dit.x"], p["dit.t"], p["dit.actions"])
    assert v.shape == p["dit.v"].shape
    assert (v - p["dit.v"]).abs().max().item() <= TOL


def test_vae_decode_matches_the_reference_output(tiny):
    _, vae, p = tiny
    with torch.no_grad():
        decoded = vae.decode(p["vae.z"])
    assert decoded.shape == p["vae.decoded"].shape
    assert (decoded - p["vae.decoded"]).abs().max().item() <= TOL


def test_vae_encode_mean_and_logvar_match_the_reference_posterior(tiny):
    _, vae, p = tiny
    with torch.no_grad():
        mean, logvar = vae.encode(p["vae.image01"])
    assert (mean - p["vae.enc_mean"]).abs().max().item() <= TOL
    assert (logvar - p["vae.enc_logvar"]).abs().max().item() <= TOL


def test_fixture_dit_file_has_the_released_deduplicated_layout(oasis_tiny_dir):
    with safe_open(oasis_tiny_dir / "dit.safetensors", "pt") as fh:
        keys = set(fh.keys())
    dit = DiT(**json.loads((oasis_tiny_dir / "config.json").read_text())["dit"])
    state_names = set(dit.state_dict())
    rotary = {k for k in state_names if "rotary" in k}
    assert keys <= state_names
    assert rotary & keys == {"blocks.0.s_attn.rotary_emb.freqs", "blocks.0.t_attn.rotary_emb.freqs"}
    assert len(keys) == len(state_names) - len(rotary) + 2


def test_dit_tables_are_computed_like_the_stored_fixture_tables(oasis_tiny_dir):
    stored = load_file(oasis_tiny_dir / "dit.safetensors")
    fresh = DiT(**json.loads((oasis_tiny_dir / "config.json").read_text())["dit"])
    assert torch.equal(fresh.spatial_rotary_emb.freqs, stored["blocks.0.s_attn.rotary_emb.freqs"])
    assert torch.equal(fresh.temporal_rotary_emb.freqs, stored["blocks.0.t_attn.rotary_emb.freqs"])


def test_oasis_500m_dit_has_the_spec_keys_shapes_and_parameter_count():
    cfg = get_preset("oasis-500m")
    with torch.device("meta"):
        dit = build_dit(cfg.dit)
    state = dit.state_dict()
    assert len(state) == 334
    assert tuple(state["x_embedder.proj.weight"].shape) == (1024, 16, 2, 2)
    assert tuple(state["blocks.15.s_adaLN_modulation.1.weight"].shape) == (6144, 1024)
    assert tuple(state["blocks.3.t_attn.to_qkv.weight"].shape) == (3072, 1024)
    assert "blocks.0.t_attn.to_qkv.bias" not in state
    assert tuple(state["final_layer.linear.weight"].shape) == (64, 1024)
    assert tuple(state["external_cond.weight"].shape) == (1024, 25)
    unique = {id(p): p for p in dit.parameters()}.values()
    trainable = sum(p.numel() for p in unique if p.requires_grad)
    frozen = sum(p.numel() for p in unique if not p.requires_grad)
    assert (trainable, frozen) == (607_943_744, 48)


def test_oasis_500m_vae_has_the_spec_keys_and_parameter_count():
    cfg = get_preset("oasis-500m")
    with torch.device("meta"):
        vae = build_autoencoder(cfg.autoencoder)
    state = vae.state_dict()
    assert len(state) == 228
    assert tuple(state["patch_embed.proj.weight"].shape) == (1024, 3, 20, 20)
    assert tuple(state["predictor.weight"].shape) == (1200, 1024)
    assert tuple(state["quant_conv.weight"].shape) == (32, 1024)
    assert tuple(state["decoder.11.attn.qkv.bias"].shape) == (3072,)
    assert sum(p.numel() for p in vae.parameters()) == 229_246_160


def test_a_freshly_built_dit_outputs_exactly_zero():
    dit = build_dit(get_preset("tiny").dit)
    x = torch.randn(1, 3, 16, 6, 8)
    t = torch.tensor([[14, 14, 500]])
    with torch.no_grad():
        v = dit(x, t, torch.rand(1, 3, 25))
    assert torch.count_nonzero(v) == 0


def test_spatial_rotary_table_is_the_spec_pixel_frequencies():
    dit = build_dit(get_preset("tiny").dit)  # head dim 16: 4 spatial, 8 temporal frequencies
    spatial = dit.spatial_rotary_emb.freqs
    assert spatial.shape == (4,)
    assert spatial[0].item() == pytest.approx(math.pi)
    assert spatial[-1].item() == pytest.approx(128 * math.pi)
    assert dit.temporal_rotary_emb.freqs[1].item() == pytest.approx(10000 ** (-2 / 16))
