"""A model holding every common torch.nn layer with non-default arguments (issue 11:
`extra_repr` must equal torch's own for each). Tests helper, not a test file."""

from __future__ import annotations

import torch
from torch import nn


class Custom(nn.Module):
    """A user class: its plain attributes become key=value."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = 0.5
        self.tag = "head"
        self.sizes = (3, 4)
        self.proj = nn.Linear(3, 3)
        self.register_buffer("mask", torch.ones(2))


def every_layer() -> nn.ModuleDict:
    """One instance of each layer, named after what it tests."""
    layers: dict[str, nn.Module] = {
        "conv1": nn.Conv1d(2, 4, 3, stride=2, padding=1, dilation=2, groups=2, bias=False,
                           padding_mode="reflect"),
        "conv2": nn.Conv2d(3, 6, (3, 5), stride=(2, 1), padding=(1, 2)),
        "conv2_same": nn.Conv2d(3, 6, 3, padding="same"),
        "conv3": nn.Conv3d(2, 2, 3, padding=1, padding_mode="circular"),
        "convt1": nn.ConvTranspose1d(4, 2, 3, stride=2, output_padding=1),
        "convt2": nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2),
        "convt3": nn.ConvTranspose3d(2, 2, 2, dilation=2, bias=False),
        "bn1": nn.BatchNorm1d(4, eps=1e-3, momentum=None),
        "bn2": nn.BatchNorm2d(4, affine=False),
        "bn3": nn.BatchNorm3d(4, track_running_stats=False, momentum=0.3),
        "ln": nn.LayerNorm((4, 5), eps=1e-6, elementwise_affine=True, bias=False),
        "ln_noaffine": nn.LayerNorm(8, elementwise_affine=False),
        "gn": nn.GroupNorm(2, 4, eps=1e-4),
        "in1": nn.InstanceNorm1d(4, affine=True),
        "in2": nn.InstanceNorm2d(4, track_running_stats=True),
        "in3": nn.InstanceNorm3d(4),
        "rms": nn.RMSNorm(6, eps=1e-5),
        "lrn": nn.LocalResponseNorm(3, alpha=2e-4),
        "emb": nn.Embedding(10, 4, padding_idx=0, max_norm=1.5, norm_type=3.0,
                            scale_grad_by_freq=True, sparse=True),
        "emb_plain": nn.Embedding(7, 3),
        "bag": nn.EmbeddingBag(10, 4, mode="max", max_norm=2.0, padding_idx=1),
        "drop": nn.Dropout(0.3),
        "drop1": nn.Dropout1d(0.1, inplace=True),
        "drop2": nn.Dropout2d(0.2),
        "drop3": nn.Dropout3d(),
        "adrop": nn.AlphaDropout(0.4),
        "fadrop": nn.FeatureAlphaDropout(0.25),
        "relu": nn.ReLU(inplace=True),
        "relu6": nn.ReLU6(),
        "leaky": nn.LeakyReLU(0.2, inplace=True),
        "elu": nn.ELU(alpha=0.7),
        "celu": nn.CELU(1.5),
        "selu": nn.SELU(inplace=True),
        "gelu": nn.GELU("tanh"),
        "gelu_plain": nn.GELU(),
        "silu": nn.SiLU(),
        "mish": nn.Mish(),
        "softmax": nn.Softmax(dim=-1),
        "softmax_none": nn.Softmax(),
        "logsoftmax": nn.LogSoftmax(1),
        "softmin": nn.Softmin(0),
        "glu": nn.GLU(dim=2),
        "hardtanh": nn.Hardtanh(-2.0, 3.5),
        "prelu": nn.PReLU(num_parameters=4, init=0.1),
        "rrelu": nn.RReLU(0.1, 0.4),
        "threshold": nn.Threshold(0.1, 20.0),
        "softplus": nn.Softplus(beta=2.0, threshold=10.0),
        "hardshrink": nn.Hardshrink(0.3),
        "softshrink": nn.Softshrink(0.7),
        "sigmoid": nn.Sigmoid(),
        "tanh": nn.Tanh(),
        "hardswish": nn.Hardswish(),
        "maxpool1": nn.MaxPool1d(3, stride=2, padding=1, dilation=2, ceil_mode=True),
        "maxpool2": nn.MaxPool2d((2, 3), return_indices=True),
        "maxpool3": nn.MaxPool3d(2, ceil_mode=True),
        "avgpool1": nn.AvgPool1d(3, stride=1, padding=1, count_include_pad=False),
        "avgpool2": nn.AvgPool2d(2, ceil_mode=True, divisor_override=3),
        "avgpool3": nn.AvgPool3d((1, 2, 2)),
        "lppool": nn.LPPool2d(2, 3, stride=2, ceil_mode=True),
        "amax1": nn.AdaptiveMaxPool1d(5),
        "amax2": nn.AdaptiveMaxPool2d((3, None)),
        "amax3": nn.AdaptiveMaxPool3d(2, return_indices=True),
        "aavg1": nn.AdaptiveAvgPool1d(4),
        "aavg2": nn.AdaptiveAvgPool2d((1, 1)),
        "aavg3": nn.AdaptiveAvgPool3d((2, 3, 4)),
        "unpool": nn.MaxUnpool2d(2, stride=2),
        "rnn": nn.RNN(4, 8, num_layers=2, nonlinearity="relu", bias=False, batch_first=True),
        "lstm": nn.LSTM(4, 8, num_layers=2, bidirectional=True, dropout=0.1, proj_size=3),
        "gru": nn.GRU(4, 6, bidirectional=True),
        "rnncell": nn.RNNCell(3, 5, nonlinearity="relu"),
        "lstmcell": nn.LSTMCell(3, 5, bias=False),
        "grucell": nn.GRUCell(3, 5),
        "mha": nn.MultiheadAttention(8, 2, dropout=0.1, bias=False, kdim=4, vdim=6),
        "enc": nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, activation="gelu",
                                          batch_first=True, norm_first=True),
        "dec": nn.TransformerDecoderLayer(8, 2, dim_feedforward=12, layer_norm_eps=1e-6),
        "flatten": nn.Flatten(0, 2),
        "unflatten": nn.Unflatten(1, (2, 5)),
        "unflatten_size": nn.Unflatten(-1, torch.Size([3, 4])),
        "up": nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=True),
        "up_size": nn.Upsample(size=(4, 6), mode="nearest"),
        "up_nearest": nn.UpsamplingNearest2d(scale_factor=3),
        "shuffle": nn.PixelShuffle(2),
        "unshuffle": nn.PixelUnshuffle(3),
        "chshuffle": nn.ChannelShuffle(2),
        "identity": nn.Identity(),
        "bilinear": nn.Bilinear(3, 4, 5, bias=False),
        "linear": nn.Linear(6, 2),
        "fold": nn.Fold((4, 5), (2, 2), stride=2),
        "unfold": nn.Unfold(3, dilation=2, padding=1),
        "pad_zero": nn.ZeroPad2d((1, 2, 0, 1)),
        "pad_const": nn.ConstantPad1d(2, 3.5),
        "pad_refl": nn.ReflectionPad2d(1),
        "pad_repl": nn.ReplicationPad3d(2),
        "pad_circ": nn.CircularPad1d((1, 2)),
        "cos": nn.CosineSimilarity(dim=0),
        "seq": nn.Sequential(nn.Linear(2, 2), nn.Tanh()),
        "plist": nn.ParameterList([nn.Parameter(torch.zeros(2, 3)),
                                   nn.Parameter(torch.ones(4, dtype=torch.float64), requires_grad=False)]),
        "pdict": nn.ParameterDict({"a": nn.Parameter(torch.zeros(2)),
                                   "b": nn.Parameter(torch.zeros(1, 2, dtype=torch.float16))}),
        "custom": Custom(),
    }
    return nn.ModuleDict(layers)
