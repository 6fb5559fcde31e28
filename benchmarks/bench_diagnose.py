"""The cost of :func:`initbook.diagnose` against one forward and backward pass of the model it diagnoses.

The benchmark model is ResNet-18 as used on CIFAR (a 3x3 stem, four stages of two basic blocks with 64,
128, 256 and 512 channels, batch norm, 11.2 M parameters; built here, no torchvision) at batch 32 on
3x32x32 inputs, with cross-entropy on random labels. Three variants, their repeats interleaved (A, B, C, A,
B, C, ...) so that load from other processes hits all of them, the median reported:

* ``fwd_bwd``: ``loss = cross_entropy(model(x), y); loss.backward()``, the reference;
* ``diagnose``: ``initbook.diagnose(model, x, target=y)``;
* ``diagnose_sgd``: the same with ``optimizer=SGD(...)`` (one step on a copy and one more forward pass).

Peak memory: each variant runs once in a fresh process (three processes each, the median reported); the growth of the peak resident set size
(``VmHWM``, reset through ``/proc/self/clear_refs`` after building the model and inputs and after one
warm-up call on a *different* tiny model, so imports and thread pools are in place) over the resident size
before the call is the memory that call needs (Linux only). The activations'
memory is that of ``fwd_bwd``. Writes ``benchmarks/diagnose_results.json``; not run by the tests.

Usage: ``python benchmarks/bench_diagnose.py [--repeats 5] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import initbook

VARIANTS = ("fwd_bwd", "diagnose", "diagnose_sgd")


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet18(classes: int = 10) -> nn.Module:
    """ResNet-18 for 32x32 inputs, He-initialized (fan_out, as torchvision does for its convolutions)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    c = 64
    for i, width in enumerate((64, 128, 256, 512)):
        for b in range(2):
            layers.append(BasicBlock(c, width, 2 if i > 0 and b == 0 else 1))
            c = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes)]
    model = nn.Sequential(*layers)
    gen = torch.Generator().manual_seed(0)
    initbook.init_model(model, "kaiming_normal", mode="fan_out", nonlinearity="relu", generator=gen)
    initbook.lecun_normal_(model[-1].weight, generator=gen)
    return model


def setup(batch: int = 32) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    model = resnet18()
    x = torch.randn(batch, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    return model, x, y


def run_variant(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> object:
    if name == "fwd_bwd":
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        return None
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1) if name == "diagnose_sgd" else None
    return initbook.diagnose(model, x, target=y, optimizer=optimizer)


def peak_memory(name: str) -> float:
    """MiB by which one call of ``name`` raises the peak RSS of a fresh process (runs this file)."""
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", name],
        capture_output=True,
        text=True,
        check=True,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": str(torch.get_num_threads()),
        },
    )
    return float(out.stdout.strip().splitlines()[-1])


def memory_child(name: str) -> None:
    tiny = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10)
    )
    warm_x = torch.randn(2, 3, 8, 8)
    tiny(warm_x)
    opt = torch.optim.SGD(tiny.parameters(), lr=0.1)  # imports what an optimizer imports
    initbook.diagnose(tiny, warm_x, target=torch.tensor([0, 1]), optimizer=opt)
    model, x, y = setup()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _status_kib("VmRSS")
    run_variant(name, model, x, y)
    print((_status_kib("VmHWM") - before) / 1024)


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status (Linux only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--memory-child", choices=VARIANTS, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child)
        return
    model, x, y = setup()
    for name in VARIANTS:  # warm-up (imports, allocator)
        run_variant(name, model, x, y)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for name in VARIANTS:
            start = time.perf_counter()
            run_variant(name, model, x, y)
            times[name].append(time.perf_counter() - start)
    load_after = os.getloadavg()
    median = {name: statistics.median(t) for name, t in times.items()}
    memory = {name: statistics.median(peak_memory(name) for _ in range(3)) for name in VARIANTS}
    report = run_variant("diagnose", model, x, y)
    result = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "threads": args.threads,
        "logical_cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "model": "ResNet-18 (CIFAR stem), batch 32, 3x32x32",
        "parameters": sum(p.numel() for p in model.parameters()),
        "repeats": args.repeats,
        "seconds": times,
        "median_s": median,
        "time_ratio": {n: median[n] / median["fwd_bwd"] for n in VARIANTS},
        "peak_rss_growth_mib": memory,
        "memory_ratio": {n: memory[n] / memory["fwd_bwd"] for n in VARIANTS},
        "findings": sorted(report.codes()),
    }
    path = ROOT / "benchmarks" / "diagnose_results.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    for n in VARIANTS:
        print(
            f"{n:13s} {median[n]:7.3f} s  x{result['time_ratio'][n]:.2f}   "
            f"peak RSS +{memory[n]:7.1f} MiB  x{result['memory_ratio'][n]:.2f}"
        )
    print(f"findings on the healthy ResNet-18: {result['findings']}; wrote {path}")


if __name__ == "__main__":
    main()
