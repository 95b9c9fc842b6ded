"""Checkpoint round trips and every way a file can be wrong."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from inference import checkpoints
from inference.actions import get_action_space
from inference.checkpoints import (
    CheckpointError,
    load_checkpoint,
    load_dit_weights,
    load_vae_weights,
    save_checkpoint,
)
from inference.config import get_preset
from inference.engine import Engine
from inference.models import build_autoencoder, build_dit, randomize_
from tests.inference.helpers import random_actions, random_latents


@pytest.fixture
def world():
    cfg = get_preset("tiny")
    dit = randomize_(build_dit(cfg.dit), 0)
    ae = randomize_(build_autoencoder(cfg.autoencoder), 1)
    return cfg, dit, ae


@pytest.fixture
def saved(world, tmp_path):
    cfg, dit, ae = world
    space = get_action_space("oasis-25")
    return save_checkpoint(tmp_path / "tiny.safetensors", cfg, dit, ae, space)


def rewrite(src, dst, edit):
    """Copy a checkpoint with edit(tensors) applied, keeping its metadata."""
    with safe_open(src, "pt") as fh:
        meta = fh.metadata()
    tensors = load_file(src)
    edit(tensors)
    save_file(tensors, dst, metadata=meta)
    return dst


def test_a_checkpoint_round_trip_restores_config_actions_and_outputs(world, saved):
    cfg, dit, ae = world
    loaded = load_checkpoint(saved)
    assert loaded.config == cfg
    assert loaded.action_space == get_action_space("oasis-25")
    x, t, a = torch.randn(1, 3, 16, 6, 8), torch.tensor([[14, 14, 700]]), torch.rand(1, 3, 25)
    with torch.no_grad():
        assert torch.equal(loaded.dit(x, t, a), dit.eval()(x, t, a))
        z = torch.randn(1, 48, 16)
        assert torch.equal(loaded.autoencoder.decode(z), ae.eval().decode(z))


def test_the_small_preset_round_trips_with_its_own_action_space(tmp_path):
    cfg = get_preset("small")
    dit, ae = randomize_(build_dit(cfg.dit), 0), randomize_(build_autoencoder(cfg.autoencoder), 1)
    path = save_checkpoint(
        tmp_path / "small.safetensors", cfg, dit, ae, get_action_space("crafter-17")
    )
    loaded = load_checkpoint(path)
    assert loaded.config == cfg and loaded.action_space.kind == "one_hot"
    assert torch.equal(loaded.autoencoder.decoder[0].weight, ae.decoder[0].weight)


def test_our_files_store_the_rotary_tables_under_the_released_names(saved):
    keys = set(load_file(saved))
    assert {"dit.blocks.0.s_attn.rotary_emb.freqs", "dit.blocks.0.t_attn.rotary_emb.freqs"} <= keys
    assert not any("spatial_rotary_emb" in k or "blocks.1.s_attn.rotary" in k for k in keys)


def test_an_engine_serves_a_checkpoint(saved):
    engine = Engine.from_checkpoint(saved, window_mode="rolling")
    engine.add_session("s", prompt_latents=random_latents(engine, 1, 0), seed=0)
    frames = [engine.step({"s": a})["s"] for a in random_actions(3, 25, 1)]
    assert frames[-1].shape == (120, 160, 3) and engine.window_mode == "rolling"


def test_a_truncated_file_names_the_first_tensor_cut_off(saved, tmp_path):
    data = saved.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) - 5000])
    with pytest.raises(CheckpointError, match="truncated") as err:
        load_checkpoint(cut)
    assert str(cut) in str(err.value) and err.value.key is not None
    assert err.value.key in str(err.value)


def test_a_file_that_is_not_safetensors_is_refused_by_name(tmp_path):
    for name, payload in [
        ("text.safetensors", b"hello, this is not a checkpoint at all"),
        ("short.safetensors", b"\x01\x02"),
        ("json.safetensors", (7).to_bytes(8, "little") + b"[1,2,3]"),
    ]:
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(CheckpointError, match="not a safetensors file") as err:
            load_checkpoint(path)
        assert str(path) in str(err.value)


def test_a_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_a_renamed_tensor_is_reported_as_unexpected(saved, tmp_path):
    def rename(t):
        t["dit.blocks.1.t_mlp.fc9.weight"] = t.pop("dit.blocks.1.t_mlp.fc2.weight")

    with pytest.raises(CheckpointError, match="unexpected tensor") as err:
        load_checkpoint(rewrite(saved, tmp_path / "renamed.safetensors", rename))
    assert err.value.key == "dit.blocks.1.t_mlp.fc9.weight"


def test_a_missing_tensor_is_named(saved, tmp_path):
    path = rewrite(
        saved, tmp_path / "missing.safetensors", lambda t: t.pop("ae.decoder.1.mlp.fc1.bias")
    )
    with pytest.raises(CheckpointError, match="missing tensor") as err:
        load_checkpoint(path)
    assert err.value.key == "ae.decoder.1.mlp.fc1.bias"


def test_a_wrong_shape_is_named_and_nothing_is_half_loaded(world, saved, tmp_path):
    def widen(t):
        t["dit.final_layer.linear.weight"] = torch.zeros(65, 64)

    path = rewrite(saved, tmp_path / "shape.safetensors", widen)
    _, dit, _ = world
    before = {k: v.clone() for k, v in dit.state_dict().items()}
    tensors = load_file(path)
    stripped = tmp_path / "dit_only.safetensors"
    save_file({k[4:]: v for k, v in tensors.items() if k.startswith("dit.")}, stripped)
    with pytest.raises(CheckpointError, match=r"shape \(65, 64\)") as err:
        load_dit_weights(dit, stripped)
    assert err.value.key == "final_layer.linear.weight"
    assert all(torch.equal(before[k], v) for k, v in dit.state_dict().items())


def test_a_dit_file_given_to_the_vae_loader_names_the_first_stray_key(world, oasis_tiny_dir):
    _, _, vae = world
    with pytest.raises(CheckpointError, match="unexpected tensor") as err:
        load_vae_weights(vae, oasis_tiny_dir / "dit.safetensors")
    assert err.value.key == "blocks.0.s_adaLN_modulation.1.bias"
    assert "dit.safetensors" in str(err.value)


def test_a_wrong_rotary_table_is_refused(oasis_tiny_dir, tmp_path):
    tensors = load_file(oasis_tiny_dir / "dit.safetensors")
    tensors["blocks.0.t_attn.rotary_emb.freqs"] = tensors["blocks.0.t_attn.rotary_emb.freqs"] * 2
    path = tmp_path / "rotary.safetensors"
    save_file(tensors, path)
    dit = build_dit(get_preset("tiny").dit)
    with pytest.raises(CheckpointError, match="analytic") as err:
        load_dit_weights(dit, path)
    assert err.value.key == "blocks.0.t_attn.rotary_emb.freqs"


def test_a_file_with_every_alias_spelled_out_also_loads(oasis_tiny_dir, tmp_path):
    tensors = load_file(oasis_tiny_dir / "dit.safetensors")
    for alias in ("spatial_rotary_emb.freqs", "blocks.1.s_attn.rotary_emb.freqs"):
        tensors[alias] = tensors["blocks.0.s_attn.rotary_emb.freqs"].clone()
    path = tmp_path / "aliases.safetensors"
    save_file(tensors, path)
    load_dit_weights(build_dit(get_preset("tiny").dit), path)


def test_metadata_that_is_not_ours_or_is_broken_is_refused(saved, tmp_path):
    tensors = load_file(saved)
    foreign = tmp_path / "foreign.safetensors"
    save_file(tensors, foreign)
    with pytest.raises(CheckpointError, match="not a Reverie checkpoint"):
        load_checkpoint(foreign)
    broken = tmp_path / "broken.safetensors"
    save_file(
        tensors, broken, metadata={"format": "reverie-world", "config": "{", "action_space": "{}"}
    )
    with pytest.raises(CheckpointError, match="bad config") as err:
        load_checkpoint(broken)
    assert err.value.key == "__metadata__"


def test_an_action_space_that_does_not_fit_the_dit_is_refused(world, tmp_path, saved):
    with safe_open(saved, "pt") as fh:
        meta = dict(fh.metadata())
    meta["action_space"] = json.dumps(get_action_space("crafter-17").to_dict())
    path = tmp_path / "mismatch.safetensors"
    save_file(load_file(saved), path, metadata=meta)
    with pytest.raises(CheckpointError, match="17 dims"):
        load_checkpoint(path)
    cfg, dit, ae = world
    with pytest.raises(ValueError, match="17 dims"):
        save_checkpoint(tmp_path / "x.safetensors", cfg, dit, ae, get_action_space("crafter-17"))


def test_an_engine_serves_files_in_the_released_layout(oasis_tiny_dir, monkeypatch):
    # The released pair loads through the same strict path; at the tiny geometry of the fixture.
    monkeypatch.setattr(checkpoints, "get_preset", lambda name: get_preset("tiny"))
    engine = Engine.from_oasis_release(
        oasis_tiny_dir / "dit.safetensors", oasis_tiny_dir / "vae.safetensors"
    )
    engine.add_session("s", prompt_latents=random_latents(engine, 1, 0), seed=0)
    assert engine.step()["s"].shape == (120, 160, 3)
