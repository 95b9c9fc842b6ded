"""Checkpoint I/O: the released Oasis files and Reverie's own self-describing format.

Released layout (docs/oasis-model.md §3): oasis500m.safetensors holds 302 tensors: the DiT
state_dict with the shared rotary tables de-duplicated to blocks.0.s_attn.rotary_emb.freqs and
blocks.0.t_attn.rotary_emb.freqs; vit-l-20.safetensors holds the VAE's 228. Loading is strict:
a missing, unexpected or mis-shaped tensor, a truncated file or a file that is not safetensors
raises CheckpointError naming the file and the first offending key. Nothing is ever half-loaded:
every check runs before the first parameter is written.

Reverie format: one safetensors file, DiT tensors under "dit.", autoencoder tensors under "ae.",
and in the metadata the WorldConfig and the action space as JSON, so loading never guesses.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from .actions import ActionSpace
from .config import WorldConfig, get_preset
from .models import Autoencoder, DiT, ViTAutoencoder, build_autoencoder, build_dit
from .models.dit import spatial_rotary_freqs, temporal_rotary_freqs

logger = logging.getLogger(__name__)

FORMAT = "reverie-world"
FORMAT_VERSION = "1"
MAX_HEADER_BYTES = 100 * 1024 * 1024
_ITEMSIZE = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded as asked; the message names file and key."""

    def __init__(self, path: str | os.PathLike, problem: str, key: str | None = None):
        where = f" (first offending key: {key!r})" if key is not None else ""
        super().__init__(f"{os.fspath(path)}: {problem}{where}")
        self.path, self.problem, self.key = os.fspath(path), problem, key

    def __reduce__(self):  # picklable, so it crosses from a model process with its own type
        return type(self), (self.path, self.problem, self.key), self.__dict__


def read_header(path: str | os.PathLike) -> dict:
    """Parse and sanity-check a safetensors header without reading the tensor data."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                raise CheckpointError(path, f"not a safetensors file ({size} bytes)")
            (n,) = struct.unpack("<Q", prefix)
            if n > min(size - 8, MAX_HEADER_BYTES):
                raise CheckpointError(
                    path,
                    f"not a safetensors file (header length {n} does not fit a {size}-byte file)",
                )
            header = json.loads(fh.read(n).decode("utf-8"))
    except OSError as exc:
        raise CheckpointError(path, f"cannot read file: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(path, "not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(path, "not a safetensors file (header is not a JSON object)")
    available = size - 8 - n
    entries = [(k, v) for k, v in header.items() if k != "__metadata__"]
    for key, entry in sorted(entries, key=lambda kv: (_end_offset(path, *kv), kv[0])):
        begin, end = entry["data_offsets"]
        if end - begin != _ITEMSIZE.get(entry.get("dtype"), 0) * _numel(path, key, entry):
            raise CheckpointError(
                path, "corrupt header entry (dtype, shape and byte range disagree)", key
            )
        if end > available:
            raise CheckpointError(
                path,
                f"truncated: tensor data ends at byte {end} of the data "
                f"section, the file holds only {available}",
                key,
            )
    return header


def _numel(path, key: str, entry: dict) -> int:
    out = 1
    try:
        for dim in entry["shape"]:
            out *= int(dim)
    except (TypeError, KeyError, ValueError):
        raise CheckpointError(path, "corrupt header entry (shape)", key) from None
    return out


def _end_offset(path, key: str, entry) -> int:
    try:
        begin, end = (int(x) for x in entry["data_offsets"])
    except (TypeError, KeyError, IndexError, ValueError):
        raise CheckpointError(path, "corrupt header entry (data_offsets)", key) from None
    if not 0 <= begin <= end:
        raise CheckpointError(path, "corrupt header entry (data_offsets)", key)
    return end


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, str]]:
    """All tensors and the string metadata of a safetensors file, validated first."""
    header = read_header(path)
    try:
        tensors = load_file(os.fspath(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(path, f"unreadable safetensors file: {exc}") from None
    return tensors, header.get("__metadata__") or {}


def _alias_groups(module: nn.Module) -> dict[str, list[str]]:
    """state_dict names grouped by the tensor they share; key = alphabetically first name."""
    by_tensor: dict[int, list[str]] = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        by_tensor.setdefault(id(tensor), []).append(name)  # shared modules: the same Parameter
    return {min(names): sorted(names) for names in by_tensor.values()}


def load_strict(module: nn.Module, tensors: dict[str, Tensor], path, prefix: str = "") -> None:
    """Copy tensors[prefix + name] into module, checking everything before writing anything."""
    state = module.state_dict(keep_vars=True)
    groups = _alias_groups(module)
    present = {k[len(prefix) :]: t for k, t in tensors.items() if k.startswith(prefix)}
    unexpected = sorted(set(present) - set(state))
    if unexpected:
        raise CheckpointError(path, "unexpected tensor", prefix + unexpected[0])
    sources: dict[str, Tensor] = {}
    for canonical, names in sorted(groups.items()):
        found = [n for n in names if n in present]
        if not found:
            raise CheckpointError(path, "missing tensor", prefix + canonical)
        for name in found:
            got, want = present[name], state[name]
            if tuple(got.shape) != tuple(want.shape):
                raise CheckpointError(
                    path,
                    f"shape {tuple(got.shape)} where the model has {tuple(want.shape)}",
                    prefix + name,
                )
            if not got.is_floating_point():
                raise CheckpointError(path, f"dtype {got.dtype} is not floating", prefix + name)
            if not torch.equal(got, present[found[0]]):
                raise CheckpointError(path, "copies of a shared tensor differ", prefix + name)
        for name in names:
            sources[name] = present[found[0]]
    if isinstance(module, DiT):
        _check_rotary(module, sources, path, prefix)
    with torch.no_grad():
        for name, target in state.items():
            target.copy_(sources[name].to(target.dtype))


def _check_rotary(dit: DiT, sources: dict[str, Tensor], path, prefix: str) -> None:
    """The stored rotary tables must equal their analytic values (docs/oasis-model.md §3)."""
    head_dim = dit.blocks[0].s_attn.to_out.in_features // dit.blocks[0].s_attn.heads
    for key, analytic in (
        ("blocks.0.s_attn.rotary_emb.freqs", spatial_rotary_freqs(head_dim)),
        ("blocks.0.t_attn.rotary_emb.freqs", temporal_rotary_freqs(head_dim)),
    ):
        stored = sources[key]
        rtol = 4 * torch.finfo(stored.dtype).eps  # a half-precision file rounds the table
        if not torch.allclose(stored.float(), analytic, rtol=rtol, atol=0.0):
            worst = (stored.float() - analytic).abs().max().item()
            raise CheckpointError(
                path, f"rotary table differs from its analytic values by {worst:.3g}", prefix + key
            )


def load_dit_weights(dit: DiT, path: str | os.PathLike) -> DiT:
    """Load a released-layout DiT file (e.g. oasis500m.safetensors) into dit, strictly."""
    tensors, _ = load_tensors(path)
    load_strict(dit, tensors, path)
    logger.info("loaded DiT weights from %s (%d tensors)", path, len(tensors))
    return dit


def load_vae_weights(vae: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a released-layout VAE file (e.g. vit-l-20.safetensors) into vae, strictly."""
    tensors, _ = load_tensors(path)
    load_strict(vae, tensors, path)
    logger.info("loaded autoencoder weights from %s (%d tensors)", path, len(tensors))
    return vae


def load_oasis_release(dit_path, vae_path) -> tuple[WorldConfig, DiT, ViTAutoencoder]:
    """The public Oasis 500M pair (oasis500m.safetensors, vit-l-20.safetensors), float32 CPU."""
    config = get_preset("oasis-500m")
    dit = load_dit_weights(build_dit(config.dit), dit_path)
    vae = load_vae_weights(build_autoencoder(config.autoencoder), vae_path)
    assert isinstance(vae, ViTAutoencoder)
    return config, dit.eval(), vae.eval()


def _canonical_state(module: nn.Module, prefix: str) -> dict[str, Tensor]:
    # One name per shared tensor, as safetensors requires and the released files do.
    state = module.state_dict()
    names = _alias_groups(module)
    return {prefix + name: state[name].detach().contiguous().cpu() for name in names}


def save_checkpoint(
    path: str | os.PathLike,
    config: WorldConfig,
    dit: DiT,
    autoencoder: Autoencoder,
    action_space: ActionSpace,
    training_step: int | None = None,
) -> Path:
    """Write a Reverie checkpoint: weights plus config and action space in the metadata.

    training_step (optional) records how many DiT steps made the weights, so a later run that
    continues from this file counts on from there.
    """
    if action_space.dim != config.dit.external_cond_dim:
        raise ValueError(
            f"action space {action_space.name} has {action_space.dim} dims; the "
            f"DiT takes {config.dit.external_cond_dim}"
        )
    tensors = {**_canonical_state(dit, "dit."), **_canonical_state(autoencoder, "ae.")}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(config.to_dict()),
        "action_space": json.dumps(action_space.to_dict()),
    }
    if training_step is not None:
        metadata["training_step"] = str(int(training_step))
    save_file(tensors, os.fspath(path), metadata=metadata)
    logger.info("saved %s checkpoint to %s (%d tensors)", config.name, path, len(tensors))
    return Path(path)


@dataclass
class LoadedWorld:
    """What a Reverie checkpoint holds, ready to serve."""

    config: WorldConfig
    action_space: ActionSpace
    dit: DiT
    autoencoder: Autoencoder
    training_step: int | None = None


def load_checkpoint(path: str | os.PathLike) -> LoadedWorld:
    """Read a Reverie checkpoint written by save_checkpoint (float32, CPU, eval mode)."""
    tensors, meta = load_tensors(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            path,
            f"not a Reverie checkpoint (metadata format is "
            f"{meta.get('format')!r}, expected {FORMAT!r})",
            "__metadata__",
        )
    try:
        config = WorldConfig.from_dict(json.loads(meta["config"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(path, f"bad config in metadata: {exc!r}", "__metadata__") from None
    try:
        action_space = ActionSpace.from_dict(json.loads(meta["action_space"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            path, f"bad action space in metadata: {exc!r}", "__metadata__"
        ) from None
    if action_space.dim != config.dit.external_cond_dim:
        raise CheckpointError(
            path,
            f"action space has {action_space.dim} dims, the DiT {config.dit.external_cond_dim}",
            "__metadata__",
        )
    stray = sorted(k for k in tensors if not k.startswith(("dit.", "ae.")))
    if stray:
        raise CheckpointError(path, "unexpected tensor", stray[0])
    dit, ae = build_dit(config.dit), build_autoencoder(config.autoencoder)
    load_strict(dit, tensors, path, prefix="dit.")
    load_strict(ae, tensors, path, prefix="ae.")
    try:
        step = int(meta["training_step"]) if "training_step" in meta else None
    except ValueError:
        raise CheckpointError(
            path, f"bad training_step in metadata: {meta['training_step']!r}", "__metadata__"
        ) from None
    logger.info("loaded %s checkpoint from %s", config.name, path)
    return LoadedWorld(config, action_space, dit.eval(), ae.eval(), step)
