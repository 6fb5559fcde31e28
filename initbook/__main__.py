"""The command line: ``python -m initbook diagnose module_or_file:factory --input-shape 8,3,32,32``.

``diagnose`` imports ``factory`` from a module (``pkg.models:make_net``) or a file (``models.py:make_net``),
calls it with no arguments to build the model, feeds it a standard normal batch of the given shape (seeded),
prints :func:`initbook.diagnose.diagnose`'s report (text, or JSON with ``--json``) and exits with status 1
when a finding reaches ``--fail-on`` (default ``error``), so it can guard a CI job; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .diagnose import SEVERITIES, diagnose

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
_OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--input-shape must be comma-separated positive ints like 8,3,32,32, got {text!r}"
        ) from None
    if not shape or any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(
            f"--input-shape must be comma-separated positive ints like 8,3,32,32, got {text!r}"
        )
    return shape


def load_factory(spec: str) -> Any:
    """Return the callable named by ``module:attr`` or ``path/to/file.py:attr``."""
    if spec.count(":") < 1:
        raise ValueError(f"expected module_or_file:factory, e.g. models.py:make_net, got {spec!r}")
    where, _, attr = spec.rpartition(":")
    if where.endswith(".py") or Path(where).is_file():
        path = Path(where)
        if not path.is_file():
            raise ValueError(f"no such file {where!r}")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise ValueError(f"cannot import {where!r}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as err:
            raise ValueError(f"cannot import module {where!r}: {err}") from err
    factory = getattr(module, attr, None)
    if not callable(factory):
        names = sorted(n for n in vars(module) if not n.startswith("_"))
        raise ValueError(f"{where!r} has no callable {attr!r}; it defines {names}")  # noqa: TRY004
    return factory


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m initbook", description="initbook's command line"
    )
    parser.add_argument("--version", action="version", version=f"initbook {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("diagnose", help="diagnose a model's initialization")
    d.add_argument("factory", help="module_or_file:factory, a callable that returns the nn.Module")
    d.add_argument("--input-shape", type=_shape, required=True, help="e.g. 8,3,32,32 (batch first)")
    d.add_argument("--classes", type=int, default=None, help="integer targets for cross-entropy")
    d.add_argument(
        "--dtype", choices=sorted(_DTYPES), default=None, help="cast the model and input"
    )
    d.add_argument("--optimizer", choices=sorted(_OPTIMIZERS), default=None)
    d.add_argument("--lr", type=float, default=1e-3, help="learning rate for --optimizer")
    d.add_argument("--seed", type=int, default=0, help="seed of the input batch and targets")
    d.add_argument("--json", action="store_true", help="print the report as JSON")
    d.add_argument("--fail-on", choices=SEVERITIES, default="error", help="exit 1 at this severity")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        model = load_factory(args.factory)()
    except ValueError as err:
        parser.error(str(err))
    if not isinstance(model, torch.nn.Module):
        parser.error(f"{args.factory} returned {type(model).__name__}, not a torch.nn.Module")
    if args.dtype is not None:
        model = model.to(_DTYPES[args.dtype])
    gen = torch.Generator().manual_seed(args.seed)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    x = torch.randn(args.input_shape, generator=gen).to(dtype)
    target = None
    if args.classes is not None:
        if args.classes < 2:
            parser.error(f"--classes must be >= 2, got {args.classes}")
        target = torch.randint(0, args.classes, args.input_shape[:1], generator=gen)
    optimizer = None
    if args.optimizer is not None:
        optimizer = _OPTIMIZERS[args.optimizer](model.parameters(), lr=args.lr)
    try:
        report = diagnose(model, x, target=target, optimizer=optimizer)
    except (TypeError, ValueError) as err:
        print(f"initbook diagnose: {err}", file=sys.stderr)
        return 2
    print(report.to_json(indent=2) if args.json else report.table())
    return 1 if _reaches(report, args.fail_on) else 0


def _reaches(report: Any, level: str) -> bool:
    return any(SEVERITIES.index(f.severity) >= SEVERITIES.index(level) for f in report.findings)


if __name__ == "__main__":
    sys.exit(main())
