"""Train the demonstration model shipped as ``auroradask/data/models/demo-themis-pa.onnx``.

A small CNN for the ``themis-pa`` preset with the classes of the published pulsating-aurora
classifier (bad_viewing, no_aurora, other_aurora, pulsating), trained on procedurally generated
all-sky frames: arcs, patches, diffuse glow, stars, clouds, moon and noise. It is NOT trained on
real data and says so in its model card: it exists so that the pipeline can be run and tested
end to end, not to do science with.

Needs PyTorch and onnx (``pip install torch onnx``), which the package itself does not.
Deterministic for a given ``--seed``. It writes ``demo-themis-pa.onnx`` in the current folder
unless told otherwise; replacing the shipped model is done on purpose::

    python examples/train_demo_model.py --out auroradask/data/models/demo-themis-pa.onnx
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import auroradask
from auroradask import ModelCard, circle_elevation, field_of_view, get_preset, preprocess_frames

CLASSES = ["bad_viewing", "no_aurora", "other_aurora", "pulsating"]
SIZE = 256


def _grid():
    rows, cols = np.indices((SIZE, SIZE), dtype=np.float32)
    return rows - 127.5, cols - 127.5


def _smooth_noise(rng: np.random.Generator, scale: int) -> np.ndarray:
    """Smooth random field in 0..1 (bilinear upsampling of a coarse grid)."""
    import cv2

    coarse = rng.random((SIZE // scale + 2, SIZE // scale + 2)).astype(np.float32)
    field = cv2.resize(coarse, (SIZE + 2 * scale, SIZE + 2 * scale), interpolation=cv2.INTER_CUBIC)
    return np.clip(field[scale : scale + SIZE, scale : scale + SIZE], 0, 1)


def sky(rng: np.random.Generator, kind: str) -> np.ndarray:
    """One raw 16-bit all-sky frame of the given class."""
    y, x = _grid()
    r = np.hypot(y, x)
    inside = r < 120
    image = rng.normal(3400 + rng.uniform(-100, 300), 25, (SIZE, SIZE)).astype(np.float32)
    stars = rng.random((SIZE, SIZE)) < rng.uniform(0.001, 0.004)
    star_light = np.where(stars, rng.uniform(300, 3000, (SIZE, SIZE)), 0).astype(np.float32)
    airglow = 200 * (r / 120) ** 2 * rng.uniform(0.5, 1.5)
    light = airglow + star_light
    if kind == "other_aurora":
        for _ in range(rng.integers(1, 4)):  # arcs: bright curved bands across the sky
            angle = rng.uniform(0, np.pi)
            offset = rng.uniform(-70, 70)
            curve = rng.uniform(-0.004, 0.004)
            d = np.cos(angle) * y + np.sin(angle) * x - offset
            along = -np.sin(angle) * y + np.cos(angle) * x
            d = d - curve * along**2
            width = rng.uniform(3, 12)
            brightness = rng.uniform(3000, 25000)
            light += (
                brightness * np.exp(-0.5 * (d / width) ** 2) * (0.6 + 0.4 * _smooth_noise(rng, 32))
            )
        if rng.random() < 0.5:
            light += rng.uniform(500, 3000) * _smooth_noise(rng, 64)  # diffuse glow beside arcs
    elif kind == "pulsating":
        field = _smooth_noise(rng, int(rng.choice([12, 16, 24])))
        patches = np.clip((field - rng.uniform(0.45, 0.65)) * 4, 0, 1)
        light += rng.uniform(1500, 8000) * patches + rng.uniform(300, 1500) * _smooth_noise(rng, 64)
    elif kind == "bad_viewing":
        if rng.random() < 0.5:  # moon: a saturated disk and its glare
            cy, cx = rng.uniform(-90, 90, 2)
            dist = np.hypot(y - cy, x - cx)
            light += 62000 * (dist < rng.uniform(4, 8)) + rng.uniform(4000, 20000) * np.exp(
                -dist / rng.uniform(20, 60)
            )
            light += rng.uniform(500, 4000) * _smooth_noise(rng, 48)
        else:  # cloud: a bright, smooth cover that hides the stars
            cover = _smooth_noise(rng, int(rng.choice([32, 48, 64])))
            light = light * (1 - 0.9 * cover) + rng.uniform(2000, 15000) * cover
    # no_aurora: stars and airglow only
    image += np.where(inside, light, 0) * np.clip((128 - r) / 8, 0, 1)
    image += rng.normal(0, 30, image.shape)
    return np.clip(image, 0, 65535).astype(np.uint16)


def dataset(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed frames (n, 224, 224, 3) float32 and labels, through the real preset."""
    rng = np.random.default_rng(seed)
    preset = get_preset("themis-pa")
    fov = field_of_view(circle_elevation(), preset.min_elevation)
    labels = np.repeat(np.arange(len(CLASSES)), n_per_class)
    rng.shuffle(labels)
    raw = np.stack([sky(rng, CLASSES[k]) for k in labels])
    return preprocess_frames(raw, fov, preset), labels


def build_network():
    import torch
    from torch import nn

    class DemoNet(nn.Module):
        """NHWC float32 0..255 in, class probabilities out."""

        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.AvgPool2d(4),  # 224 -> 56
                nn.Conv2d(3, 12, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(12, 24, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(24, 48, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(48, 48, 3, stride=1, padding=1),
                nn.ReLU(),
            )
            self.head = nn.Linear(96, len(CLASSES))

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            x = image.permute(0, 3, 1, 2) / 255.0
            x = self.features(x)
            pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
            return torch.softmax(self.head(pooled), dim=1)

    return DemoNet()


def train(out: str, n_per_class: int, epochs: int, seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    t0 = time.time()
    x_train, y_train = dataset(n_per_class, seed)
    x_val, y_val = dataset(max(50, n_per_class // 5), seed + 1)
    print(f"generated {len(x_train)} + {len(x_val)} frames in {time.time() - t0:.0f} s")
    net = build_network()
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(xt))
        for start in range(0, len(xt), 32):
            batch = order[start : start + 32]
            probability = net(xt[batch])
            loss = torch.nn.functional.nll_loss(torch.log(probability + 1e-7), yt[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        net.eval()
        with torch.no_grad():
            accuracy = (net(torch.from_numpy(x_val)).argmax(1).numpy() == y_val).mean()
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}, validation accuracy {accuracy:.3f}")

    torch.onnx.export(
        net,
        (torch.zeros(1, 224, 224, 3),),
        out,
        input_names=["image"],
        output_names=["probability"],
        dynamic_axes={"image": {0: "batch"}, "probability": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    card = ModelCard(
        classes=CLASSES,
        preset=get_preset("themis-pa").to_dict(),
        input_name="image",
        layout="NHWC",
        size=(224, 224),
        dtype="float32",
        outputs="probabilities",
        description=(
            "DEMONSTRATION MODEL, NOT TRAINED ON REAL DATA. A small CNN trained by "
            "examples/train_demo_model.py on procedurally generated all-sky frames (arcs, "
            "patches, diffuse glow, stars, clouds, moon, noise; "
            f"seed {seed}, {n_per_class} frames per class, synthetic validation accuracy "
            f"{accuracy:.2f}). Use it to run and test the pipeline, not for science."
        ),
    )
    auroradask.write_model_card(out, card)
    print(f"wrote {out} in {time.time() - t0:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", default="demo-themis-pa.onnx", help="the model to write")
    parser.add_argument("--per-class", type=int, default=600, help="training frames per class")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=20140310)
    args = parser.parse_args()
    train(args.out, args.per_class, args.epochs, args.seed)


if __name__ == "__main__":
    main()
