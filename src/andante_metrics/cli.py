"""The ``andante-metrics`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from andante_metrics.demo import DemoConfig, run_demo
    from andante_metrics.report.card import format_value
    from andante_metrics.report.markdown import summary_rows

    epochs = args.epochs
    if epochs is None:
        epochs = 2 if args.quick else 10
    config = DemoConfig(
        out_dir=Path(args.out),
        epochs=epochs,
        seed=args.seed,
        quick=args.quick,
        progress=not args.no_progress,
    )
    card, paths = run_demo(config)
    width = max(len(f"{area}/{name}") for area, name, *_ in summary_rows(card))
    print(f"\n{card.title}")
    for area, name, value, unit, better in summary_rows(card):
        label = f"{area}/{name}".ljust(width)
        print(f"  {label}  {format_value(value):>12} {unit:<10} {better}")
    seconds = card.timings["total"]
    print(f"\nWrote {paths['json']}, {paths['markdown']} and {paths['html']} in {seconds:.1f} s.")
    return 0


def _report(args: argparse.Namespace) -> int:
    from andante_metrics.report import KPICard
    from andante_metrics.report.html import render_html

    card = KPICard.from_json(args.card)
    out = Path(args.out)
    out.write_text(render_html(card))
    print(f"Wrote {out}.")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from andante_metrics.report import KPICard, compare_cards, render_comparison_html

    cards = [KPICard.from_json(path) for path in args.cards]
    if args.labels:
        labels = args.labels.split(",")
    else:
        labels = [Path(p).parent.name or p for p in args.cards]
        if len(set(labels)) < len(labels):
            labels = [str(p) for p in args.cards]
    comparison = compare_cards(cards, labels=labels, baseline=args.baseline)
    out = Path(args.out)
    out.write_text(render_comparison_html(comparison))
    print(f"Wrote {out}: {len(comparison.rows)} KPIs across {len(cards)} cards.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``andante-metrics`` command."""
    parser = argparse.ArgumentParser(
        prog="andante-metrics", description="PyTorch-native KPIs and the KPI card."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="train a CNN on the digits, evaluate every KPI area, write the KPI card"
    )
    demo.add_argument("--out", default="kpi_card", help="output folder (default: kpi_card)")
    demo.add_argument(
        "--epochs", type=int, default=None, help="training epochs (default: 10, or 2 with --quick)"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument(
        "--quick", action="store_true", help="short run with smaller evaluation budgets, for tests"
    )
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    demo.set_defaults(handler=_demo)

    report = sub.add_parser("report", help="render one KPI card JSON as a self-contained HTML page")
    report.add_argument("card", help="path of a kpi_card.json")
    report.add_argument(
        "--out", default="kpi_card.html", help="HTML file to write (default: kpi_card.html)"
    )
    report.set_defaults(handler=_report)

    compare = sub.add_parser(
        "compare", help="put several KPI cards side by side in one HTML page, best value marked"
    )
    compare.add_argument("cards", nargs="+", help="paths of two or more kpi_card.json files")
    compare.add_argument(
        "--out", default="comparison.html", help="HTML file to write (default: comparison.html)"
    )
    compare.add_argument(
        "--labels",
        default="",
        help="comma-separated column names (default: each card's folder name, or its path when "
        "two folders share a name)",
    )
    compare.add_argument(
        "--baseline",
        type=int,
        default=0,
        help="index of the card the differences are taken to (default: 0)",
    )
    compare.set_defaults(handler=_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "epochs", None) is not None and args.epochs < 1:
        print(f"error: --epochs must be at least 1, got {args.epochs}", file=sys.stderr)
        return 2
    if getattr(args, "seed", None) is not None and not 0 <= args.seed < 2**31:
        print(f"error: --seed must lie in [0, 2**31 - 1], got {args.seed}", file=sys.stderr)
        return 2
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError) as err:
        if args.command == "demo":
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
