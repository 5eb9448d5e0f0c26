"""leftthomas/SRGAN's generator: its key layout is detected and mapped (a state dict the test
makes from an independent copy of the authors' model code), and, with the shared weights, the
released ``netG_epoch_4_100.pth`` gives a plausible Set5 x4 score."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srkit.archs import count_params
from srkit.bench import evaluate_model
from srkit.data.builtin import bundled_set5, data_dir, official_weights_dir
from srkit.weights import load, load_network
from srkit.weights.errors import WeightsError


# --- the authors' model code (leftthomas/SRGAN model.py, the older version with PReLU in
# block7), written out here independently of srkit's module --------------------------------
class AuthorsResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        residual = self.prelu(self.bn1(self.conv1(x)))
        return x + self.bn2(self.conv2(residual))


class AuthorsUpsampleBlock(nn.Module):
    def __init__(self, in_channels, up_scale):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels * up_scale**2, kernel_size=3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(up_scale)
        self.prelu = nn.PReLU()

    def forward(self, x):
        return self.prelu(self.pixel_shuffle(self.conv(x)))


class AuthorsGenerator(nn.Module):
    def __init__(self, scale_factor, tail_bn=False):
        upsample_block_num = int(math.log(scale_factor, 2))
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(3, 64, kernel_size=9, padding=4), nn.PReLU())
        self.block2 = AuthorsResidualBlock(64)
        self.block3 = AuthorsResidualBlock(64)
        self.block4 = AuthorsResidualBlock(64)
        self.block5 = AuthorsResidualBlock(64)
        self.block6 = AuthorsResidualBlock(64)
        last = nn.BatchNorm2d(64) if tail_bn else nn.PReLU()
        self.block7 = nn.Sequential(nn.Conv2d(64, 64, kernel_size=3, padding=1), last)
        block8 = [AuthorsUpsampleBlock(64, 2) for _ in range(upsample_block_num)]
        block8.append(nn.Conv2d(64, 3, kernel_size=9, padding=4))
        self.block8 = nn.Sequential(*block8)

    def forward(self, x):
        block1 = self.block1(x)
        block6 = self.block6(self.block5(self.block4(self.block3(self.block2(block1)))))
        block7 = self.block7(block6)
        block8 = self.block8(block1 + block7)
        return (F.tanh(block8) + 1) / 2


def _authors_net(scale: int, tail_bn: bool = False) -> AuthorsGenerator:
    torch.manual_seed(0)
    net = AuthorsGenerator(scale, tail_bn)
    with torch.no_grad():  # non-trivial batch-norm statistics and slopes
        for name, buffer in net.named_buffers():
            if name.endswith("running_mean"):
                buffer.uniform_(-0.1, 0.1)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return net.eval()


@pytest.mark.parametrize(("scale", "tail_bn"), [(4, False), (2, False), (4, True)])
def test_authors_layout_is_detected_and_gives_the_authors_outputs(tmp_path, scale, tail_bn):
    reference = _authors_net(scale, tail_bn)
    state = reference.state_dict()
    # the released file was written by a torch without batch-norm step counters
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "netG_epoch_4_100.pth"
    torch.save(state, path)
    net, found_scale, convention, info = load_network(path)
    assert info["arch"] == "srgan_leftthomas" and found_scale == scale
    assert info["options"] == {"blocks": 5, "features": 64, "tail_bn": tail_bn}
    assert (convention.channels, convention.value_range, convention.mean) == ("rgb", 1.0, None)
    assert count_params(net) == count_params(reference)
    x = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(net.eval()(x), reference(x), atol=1e-6)
    model = load(path)  # the SRModel: RGB [0, 1] in, the authors' output out
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-6)


def test_released_file_count():
    reference = AuthorsGenerator(4)
    released = sum(v.numel() for k, v in reference.state_dict().items() if "running" not in k
                   and "num_batches" not in k)  # fmt: skip
    assert released == count_params(reference) == 734_092


def test_out_of_order_blocks_are_a_clear_error(tmp_path):
    state = _authors_net(4).state_dict()
    state = {k.replace("block3.", "block9."): v for k, v in state.items()}
    torch.save(state, tmp_path / "odd.pth")
    with pytest.raises(WeightsError, match=r"residual blocks \[2, 4, 5, 6, 9\]"):
        load(tmp_path / "odd.pth")


@pytest.mark.shared
def test_released_generator_scores_plausibly_on_set5():
    path = official_weights_dir() / "srgan_leftthomas" / "netG_epoch_4_100.pth"
    if not path.is_file():
        pytest.skip(f"leftthomas SRGAN weights not found at {path} (set SRKIT_WEIGHTS)")
    shared = data_dir() / "sr" / "val" / "Set5"
    set5 = shared if shared.is_dir() else bundled_set5()
    model = load(path)
    assert (model.info["arch"], model.scale) == ("srgan_leftthomas", 4)
    result = evaluate_model(model, set5, scale=4, convention="modern")
    # measured 30.655 dB / 0.8642 (bicubic: 28.431 / 0.8113): a GAN generator trained with a
    # strong MSE term, above bicubic and below PSNR-trained networks of its size (~31.5-32 dB)
    assert result.n == 5
    assert 30.3 <= result.psnr <= 31.0, result.psnr
    assert 0.85 <= result.ssim <= 0.88, result.ssim
