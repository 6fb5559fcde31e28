"""Time the book's build, its gallery examples, and initbook's batched tools against the seeds' loops.

Writes ``benchmarks/results.json`` (machine, CPU, torch version, date, thread counts, load average) and
prints the tables that the book's "How fast is it" appendix renders from that file. Run it through
``nox -s benchmarks`` (add ``-- --skip-build`` to leave out the documentation builds, which take minutes:
clean builds of ``--baseline-rev`` and of the working tree side by side, their rebuilds with no change, and
a rebuild after an edit to one page's prose). Nothing here is run by the tests.

Every comparison runs its variants side by side: the repeats are interleaved (A, B, A, B, ...) so that a
burst of load from other processes hits both, and the median is reported. Each comparison runs with one
torch thread and with torch's default number of threads.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
# this checkout's initbook (whatever is installed) and the modules beside this script
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tools")]
import bench_train
import build_docs
import report

import initbook

DEFAULT_THREADS = torch.get_num_threads()


def interleaved(variants: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each variant, the repeats interleaved (one warm-up call each first)."""
    for fn in variants.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- documentation builds --------------------------------------------------------------------------------
# A sentence appended to one page's prose for the "edit prose, rebuild" measurement: it must execute nothing.
PROSE_EDIT = ("docs/foundations/pitfalls.md", "\n\nA sentence added by `nox -s benchmarks`.\n")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _run_build(copy: Path, command: list[str]) -> tuple[float, str]:
    """Run one build command in ``copy``; return its wall time and its output (stdout and stderr)."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(copy)}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.stderr.write(done.stdout[-5000:] + done.stderr[-5000:])
        raise SystemExit(f"build failed in {copy}: {' '.join(command)}")
    return seconds, done.stdout + done.stderr


def _executed(log: str) -> list[str]:
    """Pages and gallery scripts a build log says were executed."""
    pages = re.findall(r"(\S+\.md): Executed notebook", log)
    gallery = re.search(r"Sphinx-Gallery successfully executed (\d+) out of", log)
    ran = int(gallery.group(1)) if gallery else 0
    return [Path(p).name for p in pages] + ([f"{ran} gallery script(s)"] if ran else [])


def _export(rev: str | None, dest: Path) -> Path:
    """The sources of commit ``rev`` (``git archive``), or of the working tree if ``rev`` is None."""
    if rev is None:
        return build_docs.fresh_copy(dest)
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _build_command(copy: Path, *args: str) -> list[str]:
    """The command that builds ``copy``'s book: with its own ``tools/build_docs.py`` if it has one.

    A revision is built the way ``nox -s docs`` built it at that revision, checks included (this checkout's
    script fails an older revision on what it checks and that revision did not); a revision older than the
    script is built by this checkout's.
    """
    own = copy / "tools" / "build_docs.py"
    if own.is_file():
        return [sys.executable, str(own), "--docs", str(copy / "docs"), *args]
    return build_docs.command(copy / "docs", *args)


def _measure(copy: Path, prose_edit: bool) -> dict:
    """Clean build (html, strict), a rebuild with no change (as ``nox -s docs``), and a prose edit."""
    out: dict = {"load_before": _load()}
    out["clean_s"], log = _run_build(copy, _build_command(copy, "-b", "html"))
    out["clean_executed"] = len(_executed(log))
    docs = f"{copy / 'docs'}/"
    out["page_seconds"] = {  # read by docs/_ext/initbook_execute.py to order a clean build's pages
        path.removeprefix(docs): float(seconds)
        for path, seconds in re.findall(r"(\S+\.md): Executed notebook in ([\d.]+) seconds", log)
    }
    out["load_after_clean"] = _load()
    commands = [_build_command(copy)]  # html, then doctest
    # once untimed: the doctest builder's first run after the clean HTML build
    for command in commands:
        _run_build(copy, command)
    seconds, logs = 0.0, ""
    for command in commands:
        s, log = _run_build(copy, command)
        seconds, logs = seconds + s, logs + log
    out["rebuild_s"], out["rebuild_executed"] = seconds, _executed(logs)
    if prose_edit:
        page = copy / PROSE_EDIT[0]
        page.write_text(page.read_text(encoding="utf-8") + PROSE_EDIT[1], encoding="utf-8")
        seconds, logs = 0.0, ""
        for command in commands:
            s, log = _run_build(copy, command)
            seconds, logs = seconds + s, logs + log
        out["prose_edit_s"], out["prose_edit_executed"] = seconds, _executed(logs)
    out["load_after"] = _load()
    return out


def build_times(baseline_rev: str) -> dict:
    """Clean builds of ``baseline_rev`` and of the working tree, side by side, and their rebuilds.

    Each build runs in a fresh export of the sources (no build, no execution cache, no gallery outputs), one
    after the other on the same machine; the load average is recorded around each, since a clean build takes
    minutes and other processes change the result. The ratio (baseline / current) is the number to trust.
    """
    rev = subprocess.run(
        ["git", "rev-parse", "--short", baseline_rev],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="initbook-bench-") as tmp:
        print(f"  clean build of {rev} (baseline) ...", flush=True)
        base = _measure(_export(baseline_rev, Path(tmp) / "baseline"), prose_edit=False)
        print(f"    {base['clean_s']:.0f} s; rebuild {base['rebuild_s']:.1f} s", flush=True)
        print("  clean build of the working tree ...", flush=True)
        current = _measure(_export(None, Path(tmp) / "current"), prose_edit=True)
        print(
            f"    {current['clean_s']:.0f} s; rebuild {current['rebuild_s']:.1f} s; prose edit "
            f"{current['prose_edit_s']:.1f} s, executed {current['prose_edit_executed'] or 'nothing'}",
            flush=True,
        )
    return {
        "baseline_rev": rev,
        "baseline": base,
        "current": current,
        "clean_s": current["clean_s"],
        "rebuild_s": current["rebuild_s"],
        "clean_ratio": base["clean_s"] / current["clean_s"],
        "rebuild_ratio": base["rebuild_s"] / current["rebuild_s"],
    }


# -- gallery examples ------------------------------------------------------------------------------------
def example_times() -> list[dict]:
    out = []
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    for script in sorted((ROOT / "examples").rglob("plot_*.py")):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, script.name],
            cwd=script.parent,
            env=env,
            check=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - start
        out.append(
            {"example": script.relative_to(ROOT / "examples").as_posix(), "seconds": seconds}
        )
        print(f"  {out[-1]['example']}: {seconds:.2f} s", flush=True)
    return out


# -- batched estimators against the seeds' Python loops ---------------------------------------------------
# The seeds' size (n = 512, 100 trials), and a narrow one with many trials, where Python overhead dominates.
SIZES = ((512, 100), (32, 2000))
STEPS = 100


def seed_mean_square_loop(n: int, trials: int) -> float:
    """Seeds 001/002: draw x and a, y = a @ x, accumulate mean and mean square with .item(); repeat."""
    mean, sqr = 0.0, 0.0
    for _ in range(trials):
        x = torch.randn(n)
        a = torch.randn(n, n)
        y = a @ x
        mean += y.mean().item()
        sqr += y.pow(2).mean().item()
    return sqr / trials


# Bytes of matrices per batch of trials: the budget matmul_map's blocks of chains use (about a cache's worth).
BATCH_BYTES = 4 * 2**20


def batched_mean_square(n: int, trials: int) -> float:
    """``monte_carlo`` with the batch and the product chosen by size.

    Drawing the matrices dominates at n = 512 (26 million normal numbers, on both sides), so the batched
    version can only match the loop there, not beat it. What it must avoid is losing:

    * a batch holds as many trials as fit their matrices in 4 MB (about a cache's worth), drawn into one
      buffer: a fresh allocation of a few megabytes per batch costs a page fault per 4 KB on its first write;
    * a matrix of 256 KB or more is multiplied chain by chain (``torch.mv``, the loop's kernel). One batched
      product splits the chains between threads, and with two threads half of the matrices, just drawn by
      one core, are read by the other: 1.5 times the loop's time here, against the loop's time chain by chain.
      Small matrices go through one batched product, which is what makes n = 32 several times faster.
    """
    batch = max(1, BATCH_BYTES // (4 * n * n))
    buffer = torch.empty(batch, n, n)
    per_chain = 4 * n * n >= 2**18

    def sample(b, g):
        x = torch.randn(b, n, generator=g)
        a = buffer[:b].normal_(generator=g)
        if per_chain:
            return torch.stack([torch.mv(a[i], x[i]) for i in range(b)])
        return (x.unsqueeze(1) @ a.transpose(-1, -2)).squeeze(1)

    return initbook.stats.monte_carlo(
        sample, "mean_sq", trials, generator=torch.Generator(), batch=batch
    ).value


def seed_nan_step_loop(n: int, trials: int) -> list[int]:
    """Seed 002: iterate x = a @ x (the same a) until x.std() is NaN; once per trial."""
    steps = []
    for _ in range(trials):
        x = torch.randn(n)
        a = torch.randn(n, n)
        for i in range(STEPS):  # noqa: B007 (the seed's loop, as written there)
            x = a @ x
            if not x.std() == x.std():  # noqa: SIM201
                break
        steps.append(i)
    return steps


def batched_nan_step(n: int, trials: int) -> torch.Tensor:
    step = initbook.stats.matmul_map(n, trials=trials, generator=torch.Generator())
    return initbook.stats.first_nonfinite_step(step, torch.randn(trials, n), STEPS)


def seed_trajectory_loop(n: int, trials: int) -> list[list[float]]:
    """The seeds' per-step printout, for many chains: rms of x after each of 30 steps of a scaled map."""
    out = []
    for _ in range(trials):
        x = torch.randn(n)
        a = torch.randn(n, n) / n**0.5
        rms = []
        for _ in range(30):
            x = a @ x
            rms.append(x.pow(2).mean().sqrt().item())
        out.append(rms)
    return out


def batched_trajectory(n: int, trials: int) -> torch.Tensor:
    step = initbook.stats.matmul_map(n, scale=n**-0.5, trials=trials, generator=torch.Generator())
    return initbook.stats.trajectory(step, torch.randn(trials, n), 30, "rms")


ESTIMATORS = [
    (
        "mean square of a @ x, n = {n}, {trials} trials",
        ("seeds 001/002 Python loop", seed_mean_square_loop),
        ("`stats.monte_carlo`", batched_mean_square),
    ),
    (
        "first NaN step of x = a @ x, n = {n}, {trials} chains",
        ("seed 002 Python loop", seed_nan_step_loop),
        ("`stats.matmul_map` + `first_nonfinite_step`", batched_nan_step),
    ),
    (
        "rms after each of 30 steps, n = {n}, {trials} chains",
        ("Python loop with `.item()`", seed_trajectory_loop),
        ("`stats.trajectory`", batched_trajectory),
    ),
]


def comparisons(repeats: int) -> list[dict]:
    out = []
    for threads in (1, DEFAULT_THREADS):
        torch.set_num_threads(threads)
        for (template, (base_name, base_fn), (ib_name, ib_fn)), (n, trials) in itertools.product(
            ESTIMATORS, SIZES
        ):
            task = template.format(n=n, trials=trials)
            t = interleaved(
                {"base": partial(base_fn, n, trials), "ib": partial(ib_fn, n, trials)}, repeats
            )
            out.append(
                {
                    "task": task,
                    "baseline": base_name,
                    "baseline_s": t["base"],
                    "initbook": ib_name,
                    "initbook_s": t["ib"],
                    "threads": threads,
                }
            )
            print(f"  [{threads} thr] {task}: {t['base']:.3f} s vs {t['ib']:.3f} s", flush=True)
        if DEFAULT_THREADS == 1:
            break
    torch.set_num_threads(DEFAULT_THREADS)
    return out


# -- training ---------------------------------------------------------------------------------------------
def training(repeats: int, epochs: int) -> list[dict]:
    split = initbook.data.load_book_split()
    x, y = split.x_train, split.y_train
    hyper = {"epochs": epochs, "batch_size": 100, "lr": 0.01, "momentum": 0.9}
    out = []
    for threads in (1, DEFAULT_THREADS):
        torch.set_num_threads(threads)
        rate = bench_train.matmul_rate()
        for sizes in (bench_train.SEED003, bench_train.SMALL):
            torch.manual_seed(0)
            template = bench_train.seed003_model(sizes)
            params = sum(p.numel() for p in template.parameters())

            def fresh(sizes=sizes, template=template):
                model = bench_train.seed003_model(sizes)
                model.load_state_dict(template.state_dict())
                return model

            t = interleaved(
                {
                    "fit": lambda fresh=fresh: initbook.train.fit(
                        fresh(), x, y, seed=0, track_train_accuracy=False, **hyper
                    ),
                    "loader": lambda fresh=fresh: bench_train.dataloader_loop(
                        fresh(), x, y, seed=0, **hyper
                    ),
                },
                repeats,
            )
            samples = epochs * (x.shape[0] // 100) * 100
            name = "MLP " + "-".join(map(str, sizes)) + f", {epochs} epochs of {x.shape[0]:,}"
            out.append(
                {
                    "model": name,
                    "params": params,
                    "threads": threads,
                    "matmul_gflops": rate / 1e9,
                    "floor_s": 6 * params * samples / rate,
                    "fit_s": t["fit"],
                    "loader_s": t["loader"],
                }
            )
            print(f"  [{threads} thr] {name}: fit {t['fit']:.2f} s, loop {t['loader']:.2f} s")
        if DEFAULT_THREADS == 1:
            break
    torch.set_num_threads(DEFAULT_THREADS)
    return out


# -- trace overhead ---------------------------------------------------------------------------------------
def trace_overhead(repeats: int) -> list[dict]:
    out = []
    for threads in (1, DEFAULT_THREADS):
        torch.set_num_threads(threads)
        for sizes, batch in ((bench_train.SEED003, 256), ((784, *[256] * 10, 10), 256)):
            torch.manual_seed(0)
            model = bench_train.seed003_model(sizes)
            x = torch.randn(batch, sizes[0])

            def plain(model=model, x=x):
                model.zero_grad()
                y = model(x)
                r = torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
                (y * r).sum().backward()

            def traced(model=model, x=x):
                model.zero_grad()
                initbook.stats.trace(model, x)

            t = interleaved({"plain": plain, "trace": traced}, repeats * 5)
            name = f"MLP {len(sizes) - 1} layers, widths <= {max(sizes)}, batch {batch}"
            out.append(
                {"model": name, "threads": threads, "plain_s": t["plain"], "trace_s": t["trace"]}
            )
            print(
                f"  [{threads} thr] {name}: {t['plain'] * 1e3:.1f} ms vs {t['trace'] * 1e3:.1f} ms"
            )
        if DEFAULT_THREADS == 1:
            break
    torch.set_num_threads(DEFAULT_THREADS)
    return out


# -- initializers against torch.nn.init ---------------------------------------------------------------------
# Every torch-named initializer on the same tensor as torch.nn.init's, interleaved. The limits are issue
# #19's: at most 1.05x torch's time from about a million elements up, 1.3x on 64 x 64 (Python-side checks).
INIT_SHAPES = {
    "64 x 64": (64, 64),
    "1024 x 1024": (1024, 1024),
    "4096 x 4096": (4096, 4096),
    "conv 256 x 512 x 3 x 3": (256, 512, 3, 3),
}
INIT_CALLS: dict[str, Callable[[object, torch.Tensor], object]] = {
    "uniform_": lambda m, w: m.uniform_(w, -0.1, 0.1),
    "normal_": lambda m, w: m.normal_(w, 0.0, 0.02),
    "trunc_normal_": lambda m, w: m.trunc_normal_(w, 0.0, 0.02, -0.04, 0.04),
    "constant_": lambda m, w: m.constant_(w, 0.5),
    "xavier_uniform_": lambda m, w: m.xavier_uniform_(w),
    "xavier_normal_": lambda m, w: m.xavier_normal_(w),
    "kaiming_uniform_": lambda m, w: m.kaiming_uniform_(w, a=math.sqrt(5)),
    "kaiming_normal_": lambda m, w: m.kaiming_normal_(w, nonlinearity="relu"),
    "eye_": lambda m, w: m.eye_(w),
    "dirac_": lambda m, w: m.dirac_(w),
    "orthogonal_": lambda m, w: m.orthogonal_(w),
    "sparse_": lambda m, w: m.sparse_(w, 0.1),
}
# a QR factorization, seconds per call at 4096 x 4096: compared on the smaller tensors only
INIT_SMALL_ONLY = {"orthogonal_"}


def init_limit(shape: tuple[int, ...]) -> float:
    return 1.3 if math.prod(shape) < 1024 * 1024 else 1.05


def initializer_times(repeats: int) -> dict:
    import torch.nn.init as torch_init

    rows = []
    load_before = list(os.getloadavg())
    for threads in (1, DEFAULT_THREADS):
        torch.set_num_threads(threads)
        for label, shape in INIT_SHAPES.items():
            w = torch.empty(shape)
            for name, call in INIT_CALLS.items():
                if (name in ("eye_", "sparse_") and len(shape) != 2) or (
                    name == "dirac_" and len(shape) < 3
                ):
                    continue
                if name in INIT_SMALL_ONLY and math.prod(shape) > 1024 * 1024:
                    continue
                # many repeats where one call is microseconds, fewer where it is a tenth of a second
                n = max(repeats, int(1.0 / max(_one_call(call, torch_init, w), 1e-6)))
                wall, cpu = interleaved_wall_and_cpu(
                    {
                        "torch": partial(call, torch_init, w),
                        "initbook": partial(call, initbook.init, w),
                    },
                    min(n, 2000),
                )
                rows.append(
                    {
                        "initializer": name,
                        "shape": label,
                        "threads": threads,
                        "repeats": min(n, 2000),
                        "torch_s": wall["torch"],
                        "initbook_s": wall["initbook"],
                        "torch_cpu_s": cpu["torch"],
                        "initbook_cpu_s": cpu["initbook"],
                        "limit": init_limit(shape),
                    }
                )
                print(
                    f"  [{threads} thr] {name} {label}: torch {wall['torch'] * 1e6:.0f} us, "
                    f"initbook {wall['initbook'] * 1e6:.0f} us "
                    f"({wall['initbook'] / wall['torch']:.2f}x wall, "
                    f"{cpu['initbook'] / cpu['torch']:.2f}x CPU)",
                    flush=True,
                )
        if DEFAULT_THREADS == 1:
            break
    torch.set_num_threads(DEFAULT_THREADS)
    return {
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
        "rows": rows,
    }


def interleaved_wall_and_cpu(
    variants: dict[str, Callable[[], object]], repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """As :func:`interleaved`, with the median CPU time of this process (all its threads) per call too.

    On a machine shared with other jobs a call's wall time includes the time it waited for a CPU; its CPU
    time does not, so the CPU-time ratio is the steadier comparison there.
    """
    for fn in variants.values():
        fn()
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    median = statistics.median
    return {k: median(v) for k, v in wall.items()}, {k: median(v) for k, v in cpu.items()}


def _one_call(call: Callable, module: object, w: torch.Tensor) -> float:
    call(module, w)  # warm-up
    start = time.perf_counter()
    call(module, w)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-build", action="store_true", help="do not time the docs builds")
    parser.add_argument(
        "--baseline-rev",
        default="HEAD~1",
        help="commit whose clean build is timed beside the working tree's (default: HEAD~1)",
    )
    parser.add_argument("--skip-examples", action="store_true", help="do not time gallery examples")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--output", type=Path, default=report.RESULTS)
    parser.add_argument(
        "--only-initializers",
        action="store_true",
        help="time only the initializers against torch.nn.init; keep every other previous result",
    )
    args = parser.parse_args()
    if args.only_initializers:
        results = report.load(args.output)
        print("initializers against torch.nn.init ...", flush=True)
        results["initializers"] = initializer_times(args.repeats)
        args.output.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {args.output}\n\n{report.initializers_table(results)}")
        return

    previous = report.load(args.output) if args.output.exists() else {}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    results: dict = {
        "machine": {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": cpu_model(),
            "logical_cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "initbook_commit": commit,
            "default_threads": DEFAULT_THREADS,
            "repeats": args.repeats,
            "load_average_before": list(os.getloadavg()),
        }
    }
    if args.skip_build:
        results["build"] = previous.get("build")
        print("docs builds: skipped (--skip-build); keeping the previous results, if any")
    else:
        print("docs builds (clean, then no change) ...", flush=True)
        results["build"] = build_times(args.baseline_rev)
    if args.skip_examples:
        results["examples"] = previous.get("examples") or []
        print("gallery examples: skipped (--skip-examples); keeping the previous results, if any")
    else:
        print("gallery examples ...", flush=True)
        results["examples"] = example_times()
    print("batched estimators vs the seeds' loops ...", flush=True)
    results["comparisons"] = comparisons(args.repeats)
    print("training ...", flush=True)
    results["training"] = training(max(3, args.repeats // 2), args.epochs)
    print("trace overhead ...", flush=True)
    results["trace"] = trace_overhead(args.repeats)
    print("initializers against torch.nn.init ...", flush=True)
    results["initializers"] = initializer_times(args.repeats)
    results["machine"]["load_average_after"] = list(os.getloadavg())

    args.output.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.output}\n")
    print(report.machine_line(results))
    for name, table in report.all_tables(results).items():
        print(f"\n{name}\n{table}")


if __name__ == "__main__":
    main()
