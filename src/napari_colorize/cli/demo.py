"""Open napari with grayscale CryptoPunks, dock the Colorize widget and colorize them
with the bundled model. Without a display, write the colorized sample and a side-by-side
PNG (gray | colorized | truth) into --out instead.
"""

from __future__ import annotations

HELP = "open napari with a grayscale sample and colorize it with the bundled model"


def add_arguments(p) -> None:
    """Declare the ``demo`` subcommand's arguments on its parser ``p``."""
    p.add_argument("--model", default="beta-punks", help="model name or checkpoint file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--screenshot",
        metavar="PATH",
        default=None,
        help="save a screenshot of the viewer once the colorization has finished, then exit",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default="napari-colorize-demo",
        help="folder for the files written without a display (default: %(default)s)",
    )
    p.add_argument(
        "--no-viewer", action="store_true", help="write the files even where napari could open"
    )


def run(args) -> int:
    """Run ``demo``; the exit status."""
    from ..demo import display_problem, run_headless

    problem = "--no-viewer was given" if args.no_viewer else display_problem()
    if problem is None:
        from ..widgets.demo import run_viewer_demo

        return run_viewer_demo(model=args.model, device=args.device, screenshot=args.screenshot)
    print(f"napari-colorize demo: {problem}; writing the colorized sample to {args.out} instead")
    if args.screenshot:
        print(f"(no screenshot: {args.screenshot} needs a display)")
    paths = run_headless(args.out, model=args.model, device=args.device)
    print(f"side-by-side picture (gray | colorized | truth): {paths[-1]}")
    return 0
