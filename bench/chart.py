"""The main table's requests/s as a bar chart: one group per workload, one bar per system."""

from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from bench.rows import Row

GROUP_WIDTH = 0.84  # of the widest workload's bars, side by side
DPI = 120


def write_chart(rows: Sequence[Row], path: Path, note: str = "") -> None:
    """`rows` in the main table's order, on a log scale, since they span orders of
    magnitude; a row that finished no request has no bar. `note` goes below."""
    shown = [r for r in rows if r.load.requests_per_second > 0]
    workloads = list(dict.fromkeys(r.workload_id for r in shown))
    systems = list(dict.fromkeys(r.system for r in shown))
    palette = colormaps["tab10"]
    colours = {system: palette(i % palette.N) for i, system in enumerate(systems)}
    widest = max(sum(1 for r in shown if r.workload_id == w) for w in workloads)
    bar = GROUP_WIDTH / widest

    figure = Figure(figsize=(13, 6))
    FigureCanvasAgg(figure)  # drawn by Agg: no display, no global state
    axes = figure.subplots()
    labelled: set[str] = set()
    for x, workload in enumerate(workloads):
        group = [r for r in shown if r.workload_id == workload]
        for i, row in enumerate(group):
            offset = (i - (len(group) - 1) / 2) * bar
            value = row.load.requests_per_second
            label = row.system if row.system not in labelled else None
            labelled.add(row.system)
            bars = axes.bar(x + offset, value, bar * 0.95, color=colours[row.system], label=label)
            text = f"{value:,.0f}" if value >= 10 else f"{value:.1f}"
            axes.bar_label(bars, labels=[text], fontsize=7, padding=2)
    axes.set_yscale("log")
    axes.set_ylim(bottom=min(r.load.requests_per_second for r in shown) / 2)
    axes.set_xticks(range(len(workloads)), [_label(shown, w) for w in workloads], fontsize=8)
    axes.set_ylabel("requests/s (log scale)")
    axes.set_title("threadql beside Isso and the floor: requests per second, one worker each")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.grid(axis="y", which="major", alpha=0.3)
    if note:
        figure.text(0.01, 0.01, note, fontsize=7, wrap=True)
    figure.tight_layout(rect=(0, 0.05 if note else 0, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)


def _label(rows: Sequence[Row], workload_id: str) -> str:
    """The first row's name for the workload, in two lines."""
    name = next(r.workload for r in rows if r.workload_id == workload_id)
    head, _, rest = name.partition(" ")
    return f"{head}\n{rest}" if rest else head
