"""Benchmark initbook.train.fit against seed 003's DataLoader loop and against the compute floor.

Same model (784-512-256-128-64-10 ReLU MLP), same data (the book's 8,000-image MNIST split), same number of
epochs, batch size, optimizer and initial weights. The compute floor is

    6 x parameters x samples seen / (this machine's measured float32 matmul rate),

the time the multiply-adds of a forward and backward pass would take at the matmul rate alone.

Run: python benchmarks/bench_train.py [--epochs 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import initbook

SEED003 = (784, 512, 256, 128, 64, 10)
SMALL = (784, 32, 10)


def seed003_model(sizes: tuple[int, ...] = SEED003) -> nn.Sequential:
    return initbook.nets.mlp(sizes)  # Linear, ReLU, ..., Linear


def dataloader_loop(model, x, y, epochs, batch_size, lr, momentum, seed):
    """Seed 003's loop: TensorDataset + DataLoader(shuffle=True), loss.item() every step."""
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True
    )
    optim = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loss_f = nn.CrossEntropyLoss()
    errors = []
    for _ in range(epochs):
        for features, labels in loader:
            optim.zero_grad()
            loss = loss_f(model(features), labels)
            errors.append(loss.item())
            loss.backward()
            optim.step()
    return errors


def matmul_rate(size: int = 1024, repeats: int = 20) -> float:
    """Measured float32 matrix-multiply rate in FLOP/s (median of repeats)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * size**3 / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    split = initbook.data.load_book_split()
    x, y = split.x_train, split.y_train
    hyper = {"epochs": args.epochs, "batch_size": 100, "lr": 0.01, "momentum": 0.9}

    rate = matmul_rate()
    print(f"threads: {torch.get_num_threads()}, float32 matmul rate: {rate / 1e9:.1f} GFLOP/s")
    print(f"{args.epochs} epochs of {x.shape[0]:,} samples, batch 100, SGD with momentum")
    print()
    print(
        f"{'model':<28} {'params':>9} {'floor s':>8} {'fit s':>7} {'loader s':>9} {'fit/floor':>10} "
        f"{'loader/floor':>13} {'loader/fit':>11}"
    )
    for name, sizes in [
        ("seed 003 MLP " + "-".join(map(str, SEED003)), SEED003),
        ("small MLP " + "-".join(map(str, SMALL)), SMALL),
    ]:
        torch.manual_seed(0)
        template = seed003_model(sizes)
        params = sum(p.numel() for p in template.parameters())

        def timed(fn, sizes=sizes, template=template):
            times = []
            for r in range(args.repeats):
                model = seed003_model(sizes)
                model.load_state_dict(template.state_dict())
                t = time.perf_counter()
                fn(model, r)
                times.append(time.perf_counter() - t)
            return statistics.median(times)

        t_fit = timed(
            lambda m, r: initbook.train.fit(m, x, y, seed=r, track_train_accuracy=False, **hyper)
        )
        t_loader = timed(lambda m, r: dataloader_loop(m, x, y, seed=r, **hyper))
        samples = args.epochs * (x.shape[0] // 100) * 100
        floor = 6 * params * samples / rate
        print(
            f"{name:<28} {params:>9,} {floor:>8.3f} {t_fit:>7.3f} {t_loader:>9.3f} "
            f"{t_fit / floor:>10.1f} {t_loader / floor:>13.1f} {t_loader / t_fit:>11.2f}"
        )


if __name__ == "__main__":
    main()
