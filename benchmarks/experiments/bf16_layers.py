"""Where bf16 moves a network's colours: ``python -m benchmarks.experiments.bf16_layers``.

The network of ``--model`` (prepared for inference, as the Colorizer runs it)
colours scikit-image's photographs at their own size in float32 and with some
of its convolutions computing in bf16; prints the mean CIEDE2000 between the
two (composed to sRGB as the Colorizer composes) for: every convolution in
bf16 (inputs, weights, biases and outputs rounded, as oneDNN's bf16
convolution does), the same with float32 biases, with the first and last
layers in float32 too, and each convolution alone in bf16.

bf16 is emulated (values rounded to bf16, products summed in float32, as the
AMX units do), so the figures are the same on any CPU. See docs/benchmarks.md,
Full resolution.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np

PHOTOS = ("astronaut", "coffee", "immunohistochemistry", "retina")


def _rounded(t):
    import torch

    return t.to(torch.bfloat16).float()


def _emulated(network, in_bf16, round_bias: bool):
    """A copy of ``network`` whose convolutions named by ``in_bf16(name)`` compute as in bf16."""
    import torch.nn.functional as F
    from torch import nn

    from napari_colorize.models.fused_conv import FusedConv2d

    class Emulated(nn.Module):
        def __init__(self, conv, relu, bf16):
            super().__init__()
            self.conv, self.relu, self.bf16 = conv, relu, bf16

        def forward(self, x):
            c = self.conv
            w, b = c.weight, c.bias
            if self.bf16:
                x, w = _rounded(x), _rounded(w)
                b = _rounded(b) if (b is not None and round_bias) else b
            y = F.conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups)
            y = F.relu(y) if self.relu else y
            return _rounded(y) if self.bf16 else y

    model = copy.deepcopy(network)
    targets = []
    for name, module in model.named_modules():
        if isinstance(module, FusedConv2d):
            continue
        for child_name, child in module._modules.items():
            if isinstance(child, FusedConv2d) or type(child) is nn.Conv2d:
                targets.append((f"{name}.{child_name}".lstrip("."), module, child_name, child))
    for full_name, parent, child_name, child in targets:
        conv, relu = (child.conv, child.relu) if isinstance(child, FusedConv2d) else (child, False)
        parent._modules[child_name] = Emulated(conv, relu, in_bf16(full_name))
    return model, [t[0] for t in targets]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.experiments.bf16_layers")
    parser.add_argument("--model", default="beta-punks")
    args = parser.parse_args(argv)

    import torch

    from benchmarks.any_image import gray_of, load_image
    from napari_colorize.color import gray_to_l
    from napari_colorize.inference import Colorizer
    from napari_colorize.inference.precision import colour_change

    network = Colorizer(args.model, device="cpu", chroma_size=None, precision="fp32").model
    lights = []
    for name in PHOTOS:
        gray = gray_of(load_image(name)).astype(np.float32) / 255.0
        lights.append(torch.from_numpy(np.ascontiguousarray(gray_to_l(gray)))[None, None])

    def change(model) -> float:
        def forward(x, cond, dtype):
            with torch.inference_mode():
                return (network if dtype is None else model)(x).float()

        return float(np.mean([colour_change(forward, L, {}, torch.bfloat16) for L in lights]))

    _, names = _emulated(network, lambda n: False, True)
    first, last = names[0], names[-1]
    rows = [
        ("every convolution in bf16", lambda n: True, True),
        ("the same, biases in float32", lambda n: True, False),
        ("biases, first and last layers in float32", lambda n: n not in (first, last), False),
    ]
    rows += [(f"only {n}", (lambda k: lambda n: n == k)(n), True) for n in names]
    print(f"{args.model} on {', '.join(PHOTOS)}: mean CIEDE2000 against float32")
    for label, in_bf16, round_bias in rows:
        model, _ = _emulated(network, in_bf16, round_bias)
        print(f"{change(model):.3f}  {label}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
