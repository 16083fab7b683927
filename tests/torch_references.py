"""PyTorch modules with the originals' module names and forward passes, written from the
specs (``originals/2-ptbxl-inception1d.md``, ``3-mitbih-resnext.md`` and
``5-glucose-comparator.md``, section (c), and ``originals/state-dict-keys.md``), to make
state-dict files as a user of those originals would have them, to compute reference outputs
and to time the originals' computation beside the ports (``benchmarks/throughput.py``).
Imported only where torch is installed.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv(ni: int, nf: int, k: int) -> nn.Conv1d:
    return nn.Conv1d(ni, nf, k, padding=(k - 1) // 2, bias=False)


class InceptionBlock(nn.Module):
    def __init__(self, ni: int, kernel_sizes=(39, 19, 9), nb_filters: int = 32, bottleneck: int = 32):
        super().__init__()
        self.bottleneck = _conv(ni, bottleneck, 1)
        self.convs = nn.ModuleList([_conv(bottleneck, nb_filters, k) for k in kernel_sizes])
        self.conv_bottle = nn.Sequential(nn.MaxPool1d(3, 1, padding=1), _conv(ni, nb_filters, 1))
        self.bn_relu = nn.Sequential(nn.BatchNorm1d(4 * nb_filters), nn.ReLU())

    def forward(self, x):
        bottled = self.bottleneck(x)
        return self.bn_relu(torch.cat([c(bottled) for c in self.convs] + [self.conv_bottle(x)], dim=1))


class Shortcut(nn.Module):
    def __init__(self, ni: int, nf: int):
        super().__init__()
        self.conv, self.bn = _conv(ni, nf, 1), nn.BatchNorm1d(nf)

    def forward(self, residual, out):
        return torch.relu(out + self.bn(self.conv(residual)))


class InceptionBackbone(nn.Module):
    def __init__(self, input_channels: int = 8, depth: int = 6):
        super().__init__()
        self.im = nn.ModuleList([InceptionBlock(input_channels if d == 0 else 128) for d in range(depth)])
        self.sk = nn.ModuleList([Shortcut(input_channels if j == 0 else 128, 128) for j in range(depth // 3)])

    def forward(self, x):
        residual = x
        for d, block in enumerate(self.im):
            x = block(x)
            if d % 3 == 2:
                x = residual = self.sk[d // 3](residual, x)
        return x


class ConcatPool(nn.Module):
    def forward(self, x):
        return torch.cat([x.amax(dim=2, keepdim=True), x.mean(dim=2, keepdim=True)], dim=1)


class Inception1d(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        head = nn.Sequential(ConcatPool(), nn.Flatten(), nn.BatchNorm1d(256), nn.Dropout(0.25), nn.Linear(256, 128),
                             nn.ReLU(), nn.BatchNorm1d(128), nn.Dropout(0.5), nn.Linear(128, num_classes))
        self.layers = nn.Sequential(InceptionBackbone(), head)

    def forward(self, x):
        return self.layers(x)


def _leaky() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.01)


class Tenant(nn.Module):
    def __init__(self, ni: int, mid: int, out: int, down: bool):
        super().__init__()
        width, stride = (mid // 64) * 128, 2 if down else 1
        self.block = nn.Sequential(nn.Conv1d(ni, width, 1, stride=stride), nn.BatchNorm1d(width), _leaky(),
                                   nn.Conv1d(width, width, 3, padding=1, groups=32), nn.BatchNorm1d(width), _leaky(),
                                   nn.Conv1d(width, out, 1), nn.BatchNorm1d(out))
        self.resize = nn.Sequential(nn.Conv1d(ni, out, 1, stride=stride), nn.BatchNorm1d(out))

    def forward(self, x):
        return nn.functional.leaky_relu(self.block(x) + self.resize(x), 0.01)


def _floor(ni: int, mid: int, out: int, start: bool) -> nn.Sequential:
    return nn.Sequential(Tenant(ni, mid, out, down=not start), Tenant(out, mid, out, False), Tenant(out, mid, out, False))


class KModel(nn.Module):
    """kModel(repeat_count=3, label=5)."""

    def __init__(self):
        super().__init__()
        self.stage0 = nn.Sequential(nn.Conv1d(1, 64, 7), nn.BatchNorm1d(64), _leaky(), nn.MaxPool1d(3))
        previous = 64
        for stage, (mid, out) in enumerate(((64, 256), (128, 512), (256, 1024)), start=1):
            for sub in range(1, 5):
                setattr(self, f"stage{stage}_{sub}", _floor(previous, mid, out, start=stage == 1 and sub == 1))
                previous = out
            pad = 2 if stage == 3 else 0
            setattr(self, f"stage{stage}_", nn.Sequential(
                nn.Conv1d(1, 64, 7, padding=pad), nn.BatchNorm1d(64), nn.Conv1d(64, out, 1, padding=pad),
                nn.AvgPool1d(3 * 2 ** (stage - 1)), nn.BatchNorm1d(out)))
            setattr(self, f"layer{stage}_path", nn.Sequential(
                nn.AvgPool1d(2), nn.BatchNorm1d(out), _leaky(), nn.Conv1d(out, out, 1)))
        self.stage4 = _floor(1024, 512, 2048, start=False)
        self.fc1, self.dropout, self.fc2 = nn.Linear(2048, 32), nn.Dropout(0.3), nn.Linear(32, 5)

    def forward(self, beat):
        x = self.stage0(beat)
        for stage in (1, 2, 3):
            for sub in range(1, 5):
                x = getattr(self, f"stage{stage}_{sub}")(x)
                x = torch.cat([x, getattr(self, f"stage{stage}_")(beat)], dim=2)
            x = getattr(self, f"layer{stage}_path")(x)
        x = self.stage4(x)
        x = nn.functional.avg_pool1d(x, x.shape[2]).flatten(1)
        return self.fc2(nn.functional.leaky_relu(self.dropout(self.fc1(x)), 0.01))


def _conv_bn(ni: int, nf: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(ni, nf, k, stride, (k - 1) // 2, bias=False), nn.BatchNorm1d(nf), nn.SiLU())


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, reduced), nn.SiLU(), nn.Linear(reduced, channels), nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(x.mean(dim=2)).unsqueeze(2)


class MBConv(nn.Module):
    """Fused-MBConv (``se`` False) or MBConv with squeeze-excitation, glucose l_xxxs: 8 channels."""

    def __init__(self, ni: int, no: int, expansion: int, stride: int, se: bool):
        super().__init__()
        hidden = ni * expansion
        self.residual = stride == 1 and ni == no
        if se:
            self.conv = nn.Sequential(nn.Conv1d(ni, hidden, 1, bias=False), nn.BatchNorm1d(hidden), nn.SiLU(),
                                      nn.Conv1d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                                      nn.BatchNorm1d(hidden), nn.SiLU(), SqueezeExcite(hidden, 8),
                                      nn.Conv1d(hidden, no, 1, bias=False), nn.BatchNorm1d(no))
        else:
            self.conv = nn.Sequential(nn.Conv1d(ni, hidden, 3, stride, 1, bias=False), nn.BatchNorm1d(hidden), nn.SiLU(),
                                      nn.Conv1d(hidden, no, 1, bias=False), nn.BatchNorm1d(no))

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


def _blocks(config, stem: nn.Module) -> nn.Sequential:
    return nn.Sequential(stem, *[MBConv(8, 8, t, s, bool(se)) for t, s, se in config])


# (expansion, stride, squeeze-excitation) of every block; every channel count is 8
SUPERVISED_BLOCKS = ((1, 1, 0), (4, 1, 0), (4, 2, 1), (4, 2, 1), (1, 1, 0), (4, 2, 1), (4, 2, 1), (4, 2, 1))
ENCODER_BLOCKS, COMPARATOR_BLOCKS = SUPERVISED_BLOCKS[:4], ((1, 1, 0), (4, 2, 1), (4, 2, 1), (4, 2, 1))


class GlucoseEffNetV2(nn.Module):
    """effnetv2_ecg_l_xxxs: P(glucose) of a (1, 384) beat."""

    def __init__(self):
        super().__init__()
        self.normal_proprecessing = nn.BatchNorm1d(1)
        self.features = _blocks(SUPERVISED_BLOCKS, _conv_bn(1, 8, 3))
        self.conv = _conv_bn(8, 16, 1)
        self.classifier = nn.Linear(16, 1)

    def forward(self, beat):
        x = self.conv(self.features(self.normal_proprecessing(beat)))
        return torch.sigmoid(self.classifier(x.mean(dim=2)))


class GlucoseComparator(nn.Module):
    """effnetv2_ecg_comparator_v5_l_xxxs (key names of the shipped 2024-01-11 checkpoint):
    P(different classes) of (reference, query) beats; the encoder runs once per input."""

    def __init__(self):
        super().__init__()
        self.normal_proprecessing = nn.BatchNorm1d(1)
        self.features_encoder = _blocks(ENCODER_BLOCKS, _conv_bn(1, 8, 3))
        self.cat = _conv_bn(16, 8, 1)
        self.features_comparator = _blocks(COMPARATOR_BLOCKS, _conv_bn(8, 8, 3))
        self.conv = _conv_bn(8, 16, 1)
        self.classifier = nn.Linear(16, 1)

    def forward(self, reference, query):
        reference = self.features_encoder(self.normal_proprecessing(reference))
        query = self.features_encoder(self.normal_proprecessing(query))
        x = self.conv(self.features_comparator(self.cat(torch.cat([query, reference], dim=1))))
        return torch.sigmoid(self.classifier(x.mean(dim=2)))


def randomise_batch_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so that a map that mixes up
    BatchNorm tensors cannot pass."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d):
            n = module.num_features
            module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            module.weight.data.copy_(0.8 + 0.4 * torch.rand(n, generator=generator))
            module.bias.data.copy_(0.1 * torch.randn(n, generator=generator))
    return model.eval()
