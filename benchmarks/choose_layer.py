"""Which EfficientNet-Lite layer's cells make the best SemanticMoments patches? Measured, not guessed.

Renders SimMotion-style synthetic triplets (all five categories), runs every clip through the
backbone once, and scores the moments of every candidate layer:

* triplet accuracy: sim(reference, positive) > sim(reference, hard negative);
* Recall@1: the positive is the reference's nearest neighbour among every other clip.

    python benchmarks/choose_layer.py --triplets 40 --seed 0

Prints a markdown table (one row per layer) for the README.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from semantic_moments.backbones import create_backbone
from semantic_moments.bench.synthetic import make_triplets, render
from semantic_moments.config import MomentsConfig
from semantic_moments.moments import fuse, moments


def layer_tokens(backbone, pixels: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    """Patch tokens (N, P, C) of every requested layer of an EfficientNet-Lite, in one pass."""
    model = backbone.model
    outputs = {}
    features = model._swish(model._bn0(model._conv_stem(pixels)))
    for index, block in enumerate(model._blocks):
        features = block(features)
        if f"blocks.{index}" in layers:
            outputs[f"blocks.{index}"] = features.flatten(2).transpose(1, 2)
    if "head" in layers:
        head = model._swish(model._bn1(model._conv_head(features)))
        outputs["head"] = head.flatten(2).transpose(1, 2)
    return outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--triplets", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--layers", default="blocks.4,blocks.7,blocks.8,blocks.10,blocks.14,blocks.15,head")
    args = parser.parse_args()
    layers = args.layers.split(",")
    backbone = create_backbone(args.backbone, layer="head")
    size = backbone.preprocessing.image_size[0]
    config = MomentsConfig()
    triplets = make_triplets(args.triplets, seed=args.seed)
    started = time.perf_counter()
    vectors: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    categories = []
    for triplet in triplets:
        for scene, motion in (triplet.reference, triplet.positive, triplet.negative):
            frames = render(scene, motion, args.frames, size)
            with torch.inference_mode():
                tokens = layer_tokens(backbone, backbone.preprocess(torch.from_numpy(frames)), layers)
            for layer, layer_patch in tokens.items():
                m = moments(layer_patch, config.orders, config.convention)
                vectors[layer].append(fuse(m, config.orders, config.alpha).float().numpy())
        categories.append(triplet.category)
    elapsed = time.perf_counter() - started
    print(f"{len(triplets)} triplets x 3 clips x {args.frames} frames at {size}px, seed {args.seed}, "
          f"{elapsed:.0f}s on {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)\n")
    print("| layer | grid | channels | triplet accuracy | Recall@1 |")
    print("|---|---|---|---|---|")
    for layer in layers:
        matrix = np.stack(vectors[layer])
        matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        sims = matrix @ matrix.T
        correct = recall = 0
        for index in range(len(triplets)):
            ref, pos, neg = 3 * index, 3 * index + 1, 3 * index + 2
            correct += sims[ref, pos] > sims[ref, neg]
            row = sims[ref].copy()
            row[ref] = -np.inf
            recall += int(np.argmax(row) == pos)
        with torch.inference_mode():
            probe = layer_tokens(backbone, torch.zeros(1, 3, size, size), [layer])[layer]
        grid = int(round(probe.shape[1] ** 0.5))
        print(f"| {layer} | {grid}x{grid} | {probe.shape[2]} | {correct / len(triplets):.3f} | {recall / len(triplets):.3f} |")


if __name__ == "__main__":
    main()
