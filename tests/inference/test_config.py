"""Presets and their JSON form."""

from __future__ import annotations

import json

import pytest
import torch

from inference.config import PRESETS, WorldConfig, get_preset
from inference.models import build_autoencoder, build_dit


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_survives_its_json_form(name):
    cfg = get_preset(name)
    assert WorldConfig.from_dict(cfg.to_dict()) == cfg


def test_the_small_preset_is_the_cpu_default_of_the_notes():
    cfg = get_preset("small")
    assert cfg.image_size == (64, 64) and cfg.dit.tokens_per_frame == 64
    assert cfg.sampling.ddim_steps == 3 and cfg.dit.max_frames == 8
    dit, ae = build_dit(cfg.dit), build_autoencoder(cfg.autoencoder)
    assert ae.latent_shape == (4, 16, 16)
    params = sum(p.numel() for p in dit.parameters() if p.requires_grad)
    assert 4.0e6 < params < 4.4e6  # the note's "d=192, depth 6 (3+3 blocks), 4.2 M"
    with torch.no_grad():
        mean, logvar = ae.encode(torch.rand(2, 3, 64, 64))
        assert mean.shape == logvar.shape == (2, 4, 16, 16)
        assert ae.decode(mean).shape == (2, 3, 64, 64)


def test_the_tiny_preset_is_the_geometry_of_the_reference_fixture():
    cfg = get_preset("tiny")
    assert (cfg.dit.hidden_size, cfg.dit.depth, cfg.dit.max_frames) == (64, 2, 4)
    assert cfg.image_size == (120, 160)


def test_an_unknown_preset_lists_the_known_ones():
    with pytest.raises(KeyError, match="oasis-500m"):
        get_preset("oasis-2b")


def test_with_sampling_replaces_sampling_fields_and_keeps_the_rest():
    cfg = get_preset("small")
    fewer = cfg.with_sampling(ddim_steps=2, stabilization_level=9)
    assert (fewer.sampling.ddim_steps, fewer.sampling.stabilization_level) == (2, 9)
    assert fewer.sampling.window_mode == cfg.sampling.window_mode and fewer.dit == cfg.dit
    assert cfg.sampling.ddim_steps == 3  # the original is untouched


def test_a_dynamic_noising_schedule_survives_the_json_form_of_a_checkpoint():
    world = get_preset("small").with_sampling(context_schedule=(300, 100, 15))
    back = WorldConfig.from_dict(json.loads(json.dumps(world.to_dict())))
    assert back == world and back.sampling.context_schedule == (300, 100, 15)
