"""Small convolutional KL autoencoder for the CPU default world (64x64 RGB -> 16x16x4, f=4).

Paper: the latent-diffusion autoencoder (Rombach et al., "High-Resolution Image Synthesis with
Latent Diffusion Models", 2022), cut down to a few hundred thousand parameters as measured in
docs/cpu-budget.md. Same interface as ViTAutoencoder, so the engine can't tell them
apart.

Dimension letters: B batch, C latent channels, H/W image or feature-map height and width.
"""

from __future__ import annotations

import logging

from torch import Tensor, nn

logger = logging.getLogger(__name__)

LOGVAR_RANGE = (-30.0, 20.0)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    kernel = 4 if stride == 2 else 3  # 4x4 stride-2 kernels downsample without a checkerboard
    return nn.Conv2d(cin, cout, kernel_size=kernel, stride=stride, padding=1)


class ConvAutoencoder(nn.Module):
    """encode(images in [0,1]) -> (mean, logvar) (B,C,H/f,W/f); decode(latents) -> [-1, 1]."""

    def __init__(
        self,
        image_height: int = 64,
        image_width: int = 64,
        latent_channels: int = 4,
        channels: tuple[int, ...] = (32, 64, 128),
    ):
        super().__init__()
        factor = 2 ** (len(channels) - 1)
        if image_height % factor or image_width % factor:
            raise ValueError(f"image size must be a multiple of the downsampling factor {factor}")
        self.latent_channels = latent_channels
        self.image_size = (image_height, image_width)
        self.grid = (image_height // factor, image_width // factor)

        enc: list[nn.Module] = [_conv(3, channels[0]), nn.SiLU()]
        for cin, cout in zip(channels[:-1], channels[1:], strict=True):
            enc += [_conv(cin, cout, stride=2), nn.SiLU(), _conv(cout, cout), nn.SiLU()]
        enc.append(nn.Conv2d(channels[-1], 2 * latent_channels, kernel_size=1))
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = [_conv(latent_channels, channels[-1]), nn.SiLU()]
        for cin, cout in zip(channels[:0:-1], channels[-2::-1], strict=True):
            dec += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                _conv(cin, cout),
                nn.SiLU(),
                _conv(cout, cout),
                nn.SiLU(),
            ]
        dec.append(_conv(channels[0], 3))
        self.decoder = nn.Sequential(*dec)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one frame's latent."""
        return (self.latent_channels, *self.grid)

    def encode(self, images01: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior of images (B,3,H,W) in [0,1]: mean, logvar (B, C, H/f, W/f)."""
        moments = self.encoder(images01 * 2 - 1)  # (B, 2C, H/f, W/f)
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(*LOGVAR_RANGE)

    def decode(self, latents: Tensor) -> Tensor:
        """Latents (B, C, H/f, W/f) -> images (B, 3, H, W), roughly in [-1, 1]."""
        return self.decoder(latents)

    def encode_frames(self, images01: Tensor) -> Tensor:
        """Posterior mean (no sampling), already in the DiT's (B, C, H, W) layout."""
        return self.encode(images01)[0]

    def decode_frames(self, latents: Tensor) -> Tensor:
        """Same as decode: conv latents need no re-layout."""
        return self.decode(latents)
