"""Trend charts drawn on the server: the geometry of an SVG line chart (the template only draws it).

No script and no external asset: axes with labelled ticks, one polyline per series with a point (and its
value as a tooltip) per bucket, a legend; the template puts the same figures in a table beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 44  # margins (px): room for the axes' labels
PALETTE = ("#417690", "#3c8f3c", "#ba2121", "#e0a800", "#79aec8", "#999999")


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    value: Any
    label: str


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    points: tuple[Point, ...]

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points if p.value is not None)


def _nice_top(peak: float) -> float:
    """The y axis' top: 1, 2 or 5 times a power of ten, at or above ``peak``."""
    if peak <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= peak:
        scale *= 10
    while scale > peak:
        scale /= 10
    for step in (1, 2, 5, 10):
        if step * scale >= peak:
            return step * scale
    return 10 * scale


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.2g}"


def line_chart(
    *, title: str, labels: list[str], series: list[tuple[str, list[float | None]]], unit: str = ""
) -> dict[str, Any]:
    """Geometry for a line chart of ``series`` (name, one value or None per label) over ``labels``."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [v for _, vs in series for v in vs if v is not None]
    top = _nice_top(max(values, default=0))
    count = max(len(labels), 1)

    def x_at(index: int) -> float:
        return LEFT + (plot_w * (index + 0.5) / count)

    def y_at(value: float) -> float:
        return TOP + plot_h - plot_h * value / top

    drawn = [
        Series(
            name,
            PALETTE[i % len(PALETTE)],
            tuple(Point(x_at(j), y_at(v) if v is not None else 0.0, v, labels[j]) for j, v in enumerate(vs)),
        )
        for i, (name, vs) in enumerate(series)
    ]
    every = max(1, -(-count // 10))  # at most ~10 x labels
    x_ticks = [{"x": x_at(j), "label": labels[j]} for j in range(0, len(labels), every)]
    y_ticks = [{"y": y_at(top * k / 4), "label": _fmt(top * k / 4)} for k in range(5)]
    return {
        "title": title,
        "unit": unit,
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "bottom": HEIGHT - BOTTOM,
        "series": drawn,
        "x_ticks": x_ticks,
        "y_ticks": y_ticks,
        "table": [(label, [vs[j] for _, vs in series]) for j, label in enumerate(labels)],
        "legend": [{"name": s.name, "colour": s.colour, "x": LEFT + 130 * i} for i, s in enumerate(drawn)],
    }


def trend_charts(reports: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The admin page's four charts from the four reports' rows."""
    throughput = reports["throughput"]
    labels = [row["bucket_start"][:10] for row in throughput]
    attainment = reports["sla-attainment"]
    backlog = reports["backlog-aging"]
    states: dict[str, list[float | None]] = {}
    for row in reports["time-in-state"]:
        mean = row["mean_seconds"]
        states.setdefault(row["state"], []).append(round(mean / 3600, 2) if mean is not None else None)
    band_fields = [key for key in (backlog[0] if backlog else {}) if key.startswith("age_")]
    return [
        line_chart(
            title="Throughput (tasks per bucket)",
            labels=labels,
            series=[
                (name, [row[name] for row in throughput]) for name in ("created", "completed", "cancelled")
            ],
        ),
        line_chart(
            title="SLA attainment (% of completions met)",
            labels=labels,
            series=[
                (
                    "attainment %",
                    [
                        None if r["attainment"] is None else round(100 * r["attainment"], 1)
                        for r in attainment
                    ],
                )
            ],
            unit="%",
        ),
        line_chart(
            title="Backlog at each bucket's end, by age",
            labels=labels,
            series=[("open", [row["open_total"] for row in backlog])]
            + [(field[4:].replace("_", "-"), [row[field] for row in backlog]) for field in band_fields],
        ),
        line_chart(
            title="Mean time in state before leaving it (hours)",
            labels=labels,
            series=list(states.items()),
            unit="h",
        ),
    ]
