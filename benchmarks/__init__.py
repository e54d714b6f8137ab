"""Benchmarks of napari-colorize: run them all with ``python -m benchmarks.run``.

Each suite is a module with a ``main(args)`` function (see :data:`benchmarks.run.SUITES`)
that measures, prints, and updates its own section of ``docs/benchmarks.md``
between ``<!-- bench:NAME:start -->`` and ``<!-- bench:NAME:end -->`` markers
(:func:`benchmarks.report.update_section`). Helpers the suites share are public in
:mod:`benchmarks.common` and :mod:`benchmarks.report`; one-off experiments, run by
hand and not by ``benchmarks.run``, are in :mod:`benchmarks.experiments`.
"""
