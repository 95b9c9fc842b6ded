"""Start a run from an exported checkpoint (train.py --init-from), so training can continue.

A fresh machine holds the committed model but not the run directory that made it (optimizer
state, EMA, the finished autoencoder). Seeding writes the two state files the phases resume from:
ae.pt marked done (the checkpoint's encoder defines the latents; retraining it would invalidate
the DiT) and dit.pt whose live and EMA weights are both the exported EMA weights, with no
optimizer state: the DiT phase then warms its learning rate up again from the seeded step.
With reset_actions the DiT's action embedding starts at zero (it ignores every action) and
must be learnt again from the run's own labels: the IDM experiment's way of asking how good
a set of labels is, everything else equal.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..actions import ActionSpace
from ..checkpoints import load_checkpoint
from ..config import WorldConfig

logger = logging.getLogger(__name__)


class SeedError(ValueError):
    """The run directory cannot be seeded from the given checkpoint."""


def seed_run(
    run: Path, checkpoint: Path, reset_actions: bool = False
) -> tuple[WorldConfig, ActionSpace]:
    """Seed `run` from `checkpoint` (or resume an already seeded run); its world and actions.

    The world config comes from the checkpoint, never from a preset, so the seeded weights always
    fit. Raises CheckpointError for a bad file and SeedError for a run that holds other work.
    """
    loaded = load_checkpoint(checkpoint)
    ae_path, dit_path = run / "ae.pt", run / "dit.pt"
    if ae_path.exists() and dit_path.exists():
        logger.info("%s already holds ae.pt and dit.pt: resuming it, not re-seeding", run)
        return loaded.config, loaded.action_space
    if ae_path.exists() or dit_path.exists():
        part = "ae.pt" if ae_path.exists() else "dit.pt"
        raise SeedError(
            f"{run} holds part of another run ({part}); give --init-from a new --run directory"
        )
    step = loaded.training_step or 0
    run.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "step": 0,
            "losses": [],
            "done": True,
            "init_from": str(checkpoint),
            "model": loaded.autoencoder.state_dict(),
            "scaling_factor": loaded.config.scaling_factor,
        },
        ae_path,
    )
    weights = loaded.dit.state_dict()
    if reset_actions:
        for name in ("external_cond.weight", "external_cond.bias"):
            weights[name] = torch.zeros_like(weights[name])
    torch.save(
        {
            "step": step,
            "losses": [],
            "warmup_from": step,
            "init_from": str(checkpoint),
            "reset_actions": reset_actions,
            "model": weights,
            "ema": weights,
            "opt": None,
        },
        dit_path,
    )
    logger.info(
        "seeded %s from %s (DiT step %d%s)",
        run,
        checkpoint,
        step,
        ", action embedding reset" if reset_actions else "",
    )
    return loaded.config, loaded.action_space
