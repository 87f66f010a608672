"""A toy diffusion UNet block and one sampler step: the ops a Stable-Diffusion-like model reaches.

GroupNorm + SiLU + conv (ResNet block), self-attention through ``F.scaled_dot_product_attention``,
nearest and bicubic upsampling (decoder / latent upscaler), and classifier-free guidance with the
std-based "rescale" of Lin et al. 2023 (as in diffusers' ``rescale_noise_cfg``), which calls
``torch.std`` over (C, H, W) per sample. Random weights, seeded: nothing to download.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS, GROUPS, HEADS, SIZE = 32, 8, 4, 8


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(GROUPS, channels), nn.GroupNorm(GROUPS, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.time = nn.Linear(channels, channels)

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(emb))[:, :, None, None]
        return x + self.conv2(F.silu(self.norm2(h)))


class Attention(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(GROUPS, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, h * w, HEADS, c // HEADS).transpose(1, 2) for t in (q, k, v))
        attn = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(attn.transpose(1, 2).reshape(b, h * w, c)).transpose(1, 2).reshape(b, c, h, w)


class ToyUNet(nn.Module):
    def __init__(self, channels: int = CHANNELS):
        super().__init__()
        self.inp = nn.Conv2d(4, channels, 3, padding=1)
        self.freqs = nn.Parameter(torch.randn(channels // 2), requires_grad=False)
        self.down = ResBlock(channels)
        self.mid = Attention(channels)
        self.up = ResBlock(channels)
        self.outp = nn.Conv2d(channels, 4, 3, padding=1)

    def embed(self, t):
        angles = t[:, None].float() * self.freqs[None]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def forward(self, x, t):
        emb = self.embed(t)
        h = self.down(self.inp(x), emb)
        h = F.avg_pool2d(h, 2)
        h = self.mid(h)
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        return self.outp(self.up(h, emb))


def rescale_cfg(guided, text, phi: float = 0.7):
    """CFG rescale: match the guided prediction's per-sample std to the text-conditioned one's."""
    std_text = text.std(dim=(1, 2, 3), keepdim=True)
    std_guided = guided.std(dim=(1, 2, 3), keepdim=True)
    return phi * guided * (std_text / std_guided) + (1 - phi) * guided


@torch.no_grad()
def denoise_step(model, latents, t, guidance: float = 5.0):
    """One classifier-free-guided sampler step, then a bicubic 2x upscale of the latents."""
    both = model(torch.cat([latents, latents]), torch.cat([t, t]))
    uncond, text = both.chunk(2)
    guided = rescale_cfg(uncond + guidance * (text - uncond), text)
    latents = latents - 0.1 * guided
    return F.interpolate(latents, scale_factor=2, mode="bicubic", align_corners=False)


def example_inputs(device="cpu"):
    torch.manual_seed(0)
    model = ToyUNet().to(device).eval()
    latents = torch.randn(1, 4, SIZE, SIZE, device=device)
    t = torch.tensor([500], device=device)
    return model, latents, t
