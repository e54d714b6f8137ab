"""A small live plot of a training run's losses, drawn with QPainter (no plotting library)."""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

__all__ = ["LossPlot"]


class LossPlot(QWidget):
    """A small live plot of the losses: training, validation and, for GANs, the discriminators'.

    A GAN run's training loss is its generator's; once discriminator losses
    arrive the training series is labelled *generator* and the
    discriminators' mean loss (``(d_real + d_fake) / 2``) gets a series of its own.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.colors = {
            "train": QColor(80, 160, 255),
            "val": QColor(255, 150, 40),
            "discriminator": QColor(220, 80, 200),
        }
        self.labels = {"train": "train", "val": "val", "discriminator": "discriminators"}
        self.series: dict[str, list[tuple[float, float]]] = {k: [] for k in self.colors}
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(
            "loss per step: training (blue; a GAN's generator), validation (orange), "
            "a GAN's discriminators (magenta)"
        )

    def add_step(self, step: float, loss: float, losses: dict) -> None:
        """Plot one training step's losses (``StepEvent.loss`` and ``.losses``)."""
        if "d_real" in losses and "d_fake" in losses:
            self.labels["train"] = "generator"
            self.add("discriminator", step, 0.5 * (losses["d_real"] + losses["d_fake"]))
            if "g_adv" not in losses:  # discriminator pretraining: no generator step
                return
        self.add("train", step, loss)

    def add(self, name: str, step: float, value: float) -> None:
        if not math.isfinite(value):
            return
        points = self.series[name]
        points.append((float(step), float(value)))
        if len(points) > 4000:  # keep drawing cheap on long runs
            self.series[name] = points[::2]
        self.update()

    def clear(self) -> None:
        for points in self.series.values():
            points.clear()
        self.labels["train"] = "train"
        self.update()

    def paintEvent(self, event):
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = self.rect().adjusted(36, 6, -6, -16)
        painter.setPen(QPen(QColor(128, 128, 128)))
        painter.drawRect(rect)
        points = [p for s in self.series.values() for p in s]
        if not points:
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "loss")
            painter.end()
            return
        xs, ys = zip(*points)
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        x1 = x1 if x1 > x0 else x0 + 1
        pad = (y1 - y0) * 0.05 or abs(y1) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
        painter.drawText(2, rect.top() + 10, f"{y1:.3g}")
        painter.drawText(2, rect.bottom(), f"{y0:.3g}")
        painter.drawText(rect.left(), rect.bottom() + 14, f"{x0:.0f}")
        painter.drawText(rect.right() - 40, rect.bottom() + 14, f"{x1:.0f}")
        for name, series in self.series.items():
            if not series:
                continue
            poly = QPolygonF(
                [
                    QPointF(
                        rect.left() + (x - x0) / (x1 - x0) * rect.width(),
                        rect.bottom() - (y - y0) / (y1 - y0) * rect.height(),
                    )
                    for x, y in series
                ]
            )
            painter.setPen(QPen(self.colors[name], 1.5))
            if len(series) == 1:
                painter.drawEllipse(poly[0], 2, 2)
            else:
                painter.drawPolyline(poly)
        x = rect.left() + 6
        for name, series in self.series.items():  # legend of the series shown
            if series:
                painter.setPen(QPen(self.colors[name]))
                painter.drawText(x, rect.top() + 12, self.labels[name])
                x += painter.fontMetrics().horizontalAdvance(self.labels[name]) + 10
        painter.end()
