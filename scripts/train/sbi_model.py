"""The SBI classifier network: a small plain CNN (conv3x3 + BN + ReLU blocks), one "fake" logit.

Full resolution in the first layer (blending boundaries are a few pixels wide), stride-2 convs for
downsampling, global average pooling, dropout, one linear unit. ~0.5 M parameters (~2 MB float32).
"""

from __future__ import annotations

import torch
from torch import nn


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SbiNet(nn.Module):
    """(N, 3, S, S) float32 in -1..1 -> (N, 1) logit of "fake"."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 32, 64, 64, 128, 128, 192)) -> None:
        super().__init__()
        layers: list[nn.Module] = [_block(3, widths[0], 1)]
        c = widths[0]
        for i, w in enumerate(widths[1:]):
            # Stride 2 whenever the width grows: 112 -> 56 -> 28 -> 14 -> 7.
            layers.append(_block(c, w, 2 if w != c and i > -1 else 1))
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = x.mean(dim=(2, 3))
        return self.head(x)
