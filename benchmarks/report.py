"""Read ``benchmarks/results.json`` and format it as Markdown tables (used by ``nox -s benchmarks`` and
by the book's "How fast is it" appendix, so the printed and the published tables are the same)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).with_name("results.json")


def load(path: Path | str = RESULTS) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "not measured"
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.1f} ms"


def machine_line(results: dict) -> str:
    m = results["machine"]
    load1, load5, load15 = m["load_average_before"]
    return (
        f"Measured {m['date']} on {m['cpu']} ({m['logical_cpus']} logical CPUs; load average "
        f"{load1:.2f}, {load5:.2f}, {load15:.2f} before the run, "
        f"{m['load_average_after'][0]:.2f} after), Python {m['python']}, torch {m['torch']}, "
        f"{m['default_threads']} torch threads by default, {m['repeats']} interleaved repeats per "
        f"comparison (medians)."
    )


def comparisons_table(results: dict) -> str:
    rows = [
        "| what | threads | baseline | baseline time | initbook | initbook time | speed-up |",
        "| --- | ---: | --- | ---: | --- | ---: | ---: |",
    ]
    for c in results["comparisons"]:
        rows.append(
            f"| {c['task']} | {c['threads']} | {c['baseline']} | {_s(c['baseline_s'])} | {c['initbook']} | "
            f"{_s(c['initbook_s'])} | {c['baseline_s'] / c['initbook_s']:.3g}x |"
        )
    return "\n".join(rows)


def training_table(results: dict) -> str:
    rows = [
        (
            "| model | threads | compute floor | `initbook.train.fit` | seed 003 `DataLoader` loop "
            "| fit / floor | loop / fit |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in results["training"]:
        rows.append(
            f"| {t['model']} | {t['threads']} | {_s(t['floor_s'])} | {_s(t['fit_s'])} | "
            f"{_s(t['loader_s'])} | {t['fit_s'] / t['floor_s']:.1f} | "
            f"{t['loader_s'] / t['fit_s']:.2f} |"
        )
    return "\n".join(rows)


def trace_table(results: dict) -> str:
    rows = [
        "| model, batch | threads | forward + backward | `initbook.stats.trace` | overhead |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for t in results["trace"]:
        rows.append(
            f"| {t['model']} | {t['threads']} | {_s(t['plain_s'])} | {_s(t['trace_s'])} | "
            f"{t['trace_s'] / t['plain_s']:.2f}x |"
        )
    return "\n".join(rows)


def _loads(b: dict) -> str:
    before, after = b.get("load_before"), b.get("load_after")
    if not before or not after:
        return "not recorded"
    return f"{before[0]:.1f} → {after[0]:.1f}"


def build_table(results: dict) -> str:
    b = results.get("build") or {}
    if "baseline" not in b:  # results of a run before the side-by-side comparison
        rows = ["| build | wall time |", "| --- | ---: |"]
        rows.append(f"| clean build (every page and example executed) | {_s(b.get('clean_s'))} |")
        rows.append(f"| rebuild with no change | {_s(b.get('rebuild_s'))} |")
        return "\n".join(rows)
    base, cur = b["baseline"], b["current"]
    rows = [
        f"| build | commit {b['baseline_rev']} | this version | speed-up |",
        "| --- | ---: | ---: | ---: |",
        (
            f"| clean build, HTML (every page and example executed) | {_s(base['clean_s'])} | "
            f"{_s(cur['clean_s'])} | {base['clean_s'] / cur['clean_s']:.2f}x |"
        ),
        (
            f"| rebuild with no change, HTML and doctests (`nox -s docs`) | {_s(base['rebuild_s'])} | "
            f"{_s(cur['rebuild_s'])} | {base['rebuild_s'] / cur['rebuild_s']:.2f}x |"
        ),
    ]
    if "prose_edit_s" in cur:
        executed = ", ".join(cur["prose_edit_executed"]) or "nothing"
        rows.append(
            f"| rebuild after an edit to one page's prose (executed: {executed}) | | "
            f"{_s(cur['prose_edit_s'])} | |"
        )
    rows.append(f"| 1-minute load average, before → after | {_loads(base)} | {_loads(cur)} | |")
    return "\n".join(rows)


def examples_table(results: dict) -> str:
    rows = ["| gallery example | wall time (own process, `MPLBACKEND=Agg`) |", "| --- | ---: |"]
    for e in results["examples"]:
        rows.append(f"| `{e['example']}` | {_s(e['seconds'])} |")
    if not results["examples"]:
        rows.append("| (not measured) | |")
        return "\n".join(rows)
    total = sum(e["seconds"] for e in results["examples"])
    rows.append(f"| **total** | **{_s(total)}** |")
    return "\n".join(rows)


def initializers_table(results: dict) -> str:
    rows = [
        (
            "| initializer | tensor | threads | `torch.nn.init` | `initbook` | initbook / torch "
            "(wall) | initbook / torch (CPU) | limit |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    section = results.get("initializers") or {"rows": []}
    for r in section["rows"]:
        ratio = r["initbook_s"] / r["torch_s"]
        cpu = r["initbook_cpu_s"] / r["torch_cpu_s"] if r["torch_cpu_s"] > 0 else float("nan")
        rows.append(
            f"| `{r['initializer']}` | {r['shape']} | {r['threads']} | {_s(r['torch_s'])} | "
            f"{_s(r['initbook_s'])} | {ratio:.2f}x | {cpu:.2f}x | {r['limit']:.2f}x |"
        )
    if not section["rows"]:
        rows.append("| (not measured) | | | | | | | |")
    return "\n".join(rows)


def all_tables(results: dict) -> dict[str, str]:
    return {
        "build": build_table(results),
        "examples": examples_table(results),
        "comparisons": comparisons_table(results),
        "training": training_table(results),
        "trace": trace_table(results),
        "initializers": initializers_table(results),
    }


if __name__ == "__main__":
    data = load()
    print(machine_line(data))
    for name, table in all_tables(data).items():
        print(f"\n{name}\n{table}")
