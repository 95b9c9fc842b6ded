"""--init-from: a run seeded from an exported model continues training and counts on."""

from __future__ import annotations

import pytest
import torch

from inference.actions import get_action_space
from inference.checkpoints import load_checkpoint, save_checkpoint
from inference.models import build_autoencoder, build_dit
from inference.training.seed_run import SeedError, seed_run
from inference.training.train import main as train_main
from inference.training.train_ae import AETrainConfig, train_autoencoder
from inference.training.train_dit import DiTTrainConfig, export_world, train_dit
from tests.inference.helpers import MINI
from tests.inference.training.test_train import tiny_recording


@pytest.fixture
def exported(tmp_path):
    torch.manual_seed(0)
    world = MINI.replace(scaling_factor=0.75)
    dit, ae = build_dit(world.dit), build_autoencoder(world.autoencoder)
    path = tmp_path / "world.safetensors"
    save_checkpoint(path, world, dit, ae, get_action_space("crafter-17"), training_step=7)
    return path


def test_a_seeded_run_trains_on_from_the_exported_step(tmp_path, exported):
    run = tmp_path / "run"
    world, space = seed_run(run, exported)
    assert world.scaling_factor == 0.75 and space.name == "crafter-17"
    train, test = tiny_recording(64, 0), tiny_recording(32, 1)
    before = load_checkpoint(exported)
    ae_state = train_autoencoder(run, world, train, test, AETrainConfig(steps=4, batch=4))
    assert ae_state["step"] == 0  # done already: the exported encoder defines the latents
    lat = {"train": torch.randn(64, 4, 4, 4), "test": torch.randn(32, 4, 4, 4)}
    state = train_dit(
        run, world, space, train, test, lat, DiTTrainConfig(steps=9, batch=2, clip=4, warmup=10)
    )
    assert state["step"] == 9 and len(state["losses"]) == 2
    after = load_checkpoint(export_world(run, world, space, tmp_path / "next.safetensors"))
    assert after.training_step == 9 and after.config.scaling_factor == 0.75
    pairs = {
        part: zip(
            getattr(after, part).state_dict().values(),
            getattr(before, part).state_dict().values(),
            strict=True,
        )
        for part in ("autoencoder", "dit")
    }
    assert all(torch.equal(a, b) for a, b in pairs["autoencoder"])
    assert any(not torch.equal(a, b) for a, b in pairs["dit"])


def test_seeding_again_resumes_and_a_half_run_is_refused(tmp_path, exported):
    run = tmp_path / "run"
    seed_run(run, exported)
    seeded = torch.load(run / "dit.pt", weights_only=False)
    seeded["step"] = 11
    torch.save(seeded, run / "dit.pt")
    seed_run(run, exported)  # both files there: resume, never overwrite
    assert torch.load(run / "dit.pt", weights_only=False)["step"] == 11
    (run / "dit.pt").unlink()
    with pytest.raises(SeedError, match="new --run directory"):
        seed_run(run, exported)


def test_the_cli_names_a_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("not weights")
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--init-from", str(bad), "--run", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert "--init-from" in capsys.readouterr().err and not (tmp_path / "run" / "dit.pt").exists()


def test_an_export_only_run_can_change_the_denoising_steps(tmp_path, exported):
    run, out = tmp_path / "run", tmp_path / "fewer-steps.safetensors"
    train_main(
        [
            "--init-from",
            str(exported),
            "--run",
            str(run),
            "--phases",
            "export",
            "--ddim-steps",
            "5",
            "--export",
            str(out),
            "--data",
            str(tmp_path / "none"),
        ]
    )
    before, after = load_checkpoint(exported), load_checkpoint(out)
    assert before.config.sampling.ddim_steps != 5 and after.config.sampling.ddim_steps == 5
    assert after.training_step == before.training_step


def test_the_cli_refuses_zero_denoising_steps_before_touching_anything(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--ddim-steps", "0", "--run", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert "--ddim-steps" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_reset_actions_starts_the_action_embedding_at_zero_and_learns_it(tmp_path, exported):
    run = tmp_path / "run"
    world, space = seed_run(run, exported, reset_actions=True)
    seeded = torch.load(run / "dit.pt", weights_only=False)
    before = load_checkpoint(exported).dit.state_dict()
    for name, tensor in seeded["model"].items():
        if name.startswith("external_cond."):
            assert not tensor.any() and not seeded["ema"][name].any()
        else:
            assert torch.equal(tensor, before[name])  # everything else is the exported model
    train, test = tiny_recording(64, 0), tiny_recording(32, 1)
    lat = {"train": torch.randn(64, 4, 4, 4), "test": torch.randn(32, 4, 4, 4)}
    state = train_dit(
        run, world, space, train, test, lat, DiTTrainConfig(steps=12, batch=2, clip=4, warmup=2)
    )
    assert state["model"]["external_cond.weight"].abs().sum() > 0  # learnt from the labels


def test_reset_actions_without_init_from_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_main(["--reset-actions", "--run", str(tmp_path / "run"), "--data", str(tmp_path)])
    assert "--reset-actions needs --init-from" in capsys.readouterr().err
