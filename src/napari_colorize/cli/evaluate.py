"""Predict ab from the L of each true image, recombine with the true L and report
CIEDE2000, PSNR, SSIM, colorfulness and the ab-error AuC.
"""

from __future__ import annotations

from .common import fail, write_json_atomic

HELP = "score a model (or a baseline) on punks:test or a folder of images"


def add_arguments(p) -> None:
    """Declare the ``evaluate`` subcommand's arguments on its parser ``p``."""
    p.add_argument("--model", metavar="NAME_OR_PATH", help="registered model name or checkpoint")
    p.add_argument(
        "--data",
        default="punks:test",
        metavar="SPEC",
        help="punks:test (default), punks:train or a folder of images",
    )
    p.add_argument(
        "--baseline", choices=["gray", "mean"], help="score a baseline instead of a model"
    )
    p.add_argument("--json", metavar="OUT", help="also write the report to this JSON file")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="images per batch")


def run(args) -> int:
    """Run ``evaluate``; the exit status."""
    import time

    from tqdm import tqdm

    from ..evaluation import EvaluationDone, format_report, run_evaluation

    if (args.model is None) == (args.baseline is None):
        return fail(
            "give either --model NAME_OR_PATH or --baseline gray|mean"
            + (" (not both)" if args.model is not None else "")
        )
    what = args.model if args.model is not None else f"baseline {args.baseline}"
    start = time.perf_counter()
    report = None
    events = run_evaluation(
        model=args.model,
        data=args.data,
        baseline=args.baseline,
        batch_size=args.batch_size,
        device=args.device,
    )
    with tqdm(desc=f"evaluate {what}", unit="img", leave=False) as bar:
        for event in events:
            if isinstance(event, EvaluationDone):
                report = event.report
            else:
                bar.total = event.total
                bar.update(event.done - bar.n)
    seconds = time.perf_counter() - start
    print(f"{what} on {report['data']}")
    print(format_report(report))
    by_type = report.get("by_type") or {}
    if by_type:
        print(
            "by type:  "
            + ", ".join(
                f"{name} {r['ciede2000_fg']:.2f} (n={r['n_images']})"
                for name, r in by_type.items()
            )
            + "  [ciede2000_fg]"
        )
    print(f"{report['n_images']} images in {seconds:.1f} s")
    if args.json:
        write_json_atomic(args.json, report)
        print(f"wrote {args.json}")
    return 0
