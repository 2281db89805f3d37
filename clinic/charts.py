"""Tiny server-side SVG charts: geometry is computed here, templates draw it (no JS library)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH = 640
HEIGHT = 220
PAD_LEFT = 48
PAD_RIGHT = 16
PAD_TOP = 16
PAD_BOTTOM = 40


@dataclass
class Point:
    x: float
    y: float
    label: str
    value: str


@dataclass
class Series:
    name: str
    css_class: str
    points: list[Point] = field(default_factory=list)

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass
class Tick:
    position: float
    label: str


@dataclass
class LineChart:
    series: list[Series]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    bands: list[tuple[float, float]]  # (y_top, height) of the normal range, if any
    marks: list[Tick] = field(default_factory=list)  # vertical lines at chosen x positions
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = PAD_LEFT
    plot_right: int = WIDTH - PAD_RIGHT
    plot_top: int = PAD_TOP
    plot_bottom: int = HEIGHT - PAD_BOTTOM

    @property
    def is_empty(self) -> bool:
        return not any(s.points for s in self.series)

    @property
    def plot_width(self) -> int:
        return self.plot_right - self.plot_left


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    if high == low:
        return (out_low + out_high) / 2
    return out_low + (value - low) * (out_high - out_low) / (high - low)


def line_chart(
    *,
    x_labels: list[str],
    series: list[tuple[str, str, list[float | None]]],
    y_min: float,
    y_max: float,
    y_step: float,
    normal_range: tuple[float, float] | None = None,
    marks: Sequence[tuple[int, str]] = (),
) -> LineChart:
    """One line per (name, css_class, values); values align with x_labels, None leaves a gap.
    Each (index, label) of `marks` draws a labelled vertical line at that x position."""
    values = [v for _name, _cls, vs in series for v in vs if v is not None]
    if values:
        y_min = min(y_min, min(values))
        y_max = max(y_max, max(values))
    plot_bottom, plot_top = HEIGHT - PAD_BOTTOM, PAD_TOP
    count = len(x_labels)

    def x_at(index: int) -> float:
        return _scale(index, 0, max(count - 1, 1), PAD_LEFT + 12, WIDTH - PAD_RIGHT - 12)

    def y_at(value: float) -> float:
        return _scale(value, y_min, y_max, plot_bottom, plot_top)

    chart_series = []
    for name, css_class, vs in series:
        s = Series(name=name, css_class=css_class)
        for index, value in enumerate(vs):
            if value is not None:
                s.points.append(Point(x_at(index), y_at(value), x_labels[index], f"{value:g}"))
        chart_series.append(s)
    y_ticks = []
    tick = y_min
    while tick <= y_max + 1e-9:
        y_ticks.append(Tick(y_at(tick), f"{tick:g}"))
        tick = round(tick + y_step, 6)
    # Label at most ~8 dates so they never overlap.
    every = max(1, -(-count // 8))
    x_ticks = [Tick(x_at(i), label) for i, label in enumerate(x_labels) if i % every == 0]
    bands = []
    if normal_range is not None:
        top, bottom = y_at(min(normal_range[1], y_max)), y_at(max(normal_range[0], y_min))
        bands.append((top, bottom - top))
    return LineChart(
        series=chart_series,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        bands=bands,
        marks=[Tick(x_at(index), label) for index, label in marks],
    )


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str


@dataclass
class BarChart:
    bars: list[Bar]
    y_ticks: list[Tick]
    label_every: int
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = PAD_LEFT
    plot_right: int = WIDTH - PAD_RIGHT
    plot_bottom: int = HEIGHT - PAD_BOTTOM

    @property
    def is_empty(self) -> bool:
        return not self.bars


def _nice_step(maximum: float) -> float:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if maximum / step <= 5:
            return step
    return maximum / 5


def bar_chart(items: list[tuple[str, float]], *, value_format: str = "{:g}") -> BarChart:
    """Vertical bars for (label, value) pairs, the y axis from 0 to a round maximum."""
    if not items:
        return BarChart(bars=[], y_ticks=[], label_every=1)
    top_value = max(max(value for _label, value in items), 1)
    step = _nice_step(top_value)
    y_max = step * -(-top_value // step)
    plot_bottom, plot_top = HEIGHT - PAD_BOTTOM, PAD_TOP
    slot = (WIDTH - PAD_RIGHT - PAD_LEFT) / len(items)
    bar_width = max(min(slot * 0.7, 48), 2)
    bars = []
    for index, (label, value) in enumerate(items):
        y = _scale(value, 0, y_max, plot_bottom, plot_top)
        bars.append(
            Bar(
                x=PAD_LEFT + slot * index + (slot - bar_width) / 2,
                y=y,
                width=bar_width,
                height=plot_bottom - y,
                label=label,
                value=value_format.format(value),
            )
        )
    y_ticks = []
    tick = 0.0
    while tick <= y_max + 1e-9:
        y_ticks.append(Tick(_scale(tick, 0, y_max, plot_bottom, plot_top), f"{tick:g}"))
        tick += step
    return BarChart(bars=bars, y_ticks=y_ticks, label_every=max(1, -(-len(items) // 10)))
