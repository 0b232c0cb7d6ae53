"""How fast is the toy-face generator? Samples per second on one core, per image size.

    python benchmarks/toy_speed.py [--samples 400]

Times ``ToyFaces[i]`` (sampling the scene, rendering image and labels, converting to tensors),
the full cost a training loop pays per sample. Reports wall-clock and CPU time: on a shared
machine the CPU figure is the one that describes the code.
"""

from __future__ import annotations

import argparse
import time

import torch

from ca2sis_lib.data.toy import ToyFaces


def measure(size: int, samples: int) -> tuple[float, float]:
    dataset = ToyFaces(samples, size=size, seed=0)
    dataset[0]  # warm caches and imports
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(samples):
        dataset[i]
    return samples / (time.perf_counter() - wall), samples / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for size in (64, 128, 256):
        n = args.samples if size == 64 else max(args.samples // (size // 64) ** 2, 20)
        wall, cpu = measure(size, n)
        print(f"{size:>4}x{size:<4} {n:>5} samples: {wall:7.1f} samples/s wall, {cpu:7.1f} samples/s CPU")


if __name__ == "__main__":
    main()
