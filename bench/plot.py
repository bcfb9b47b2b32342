"""A PNG of a benchmark run: per scenario, throughput and server CPU per unit of each server.

    python bench/plot.py [RESULTS.json] [--out PNG]

RESULTS.json defaults to the newest bench/results/bench-*.json; the PNG to the same name with
.png. Bars are the medians over the rounds, whiskers the min-max; servers with connection
state recovery on are hatched. Needs matplotlib (not a dependency of the project or its tests:
``pip install matplotlib``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
COLORS = {
    "channels_sio": "#2b6cb0",
    "python-socketio": "#dd6b20",
    "socket.io": "#2f855a",
    "raw": "#718096",
}
VARIANT_COLOR = "#90cdf4"


def newest_results() -> Path:
    candidates = sorted(RESULTS_DIR.glob("bench-*.json"))
    if not candidates:
        raise SystemExit(f"no results in {RESULTS_DIR}: run python bench/run.py first")
    return candidates[-1]


def _bars(ax: Any, names: list[str], spreads: list[dict[str, float] | None], title: str) -> None:
    medians = [s["median"] if s else 0.0 for s in spreads]
    low = [s["median"] - s["min"] if s else 0.0 for s in spreads]
    high = [s["max"] - s["median"] if s else 0.0 for s in spreads]
    # A server with connection state recovery on ("channels_sio+redis@uvicorn"): its family's
    # colour, hatched. channels_sio's variants ("channels_sio-nomon@uvicorn", the baseline
    # "channels_sio@REV@uvicorn"): a lighter blue.
    apps = [name.rsplit("@", 1)[0] for name in names]
    colors = [
        VARIANT_COLOR
        if app.startswith(("channels_sio-", "channels_sio@"))
        else COLORS.get(app.split("+")[0], "#a0aec0")
        for app in apps
    ]
    positions = range(len(names))
    bars = ax.bar(positions, medians, yerr=[low, high], color=colors, capsize=3)
    for bar, app in zip(bars, apps, strict=True):
        if "+" in app:
            bar.set_hatch("//")
    ax.set_xticks(list(positions))
    if len(names) <= 5:
        ax.set_xticklabels([name.replace("@", "\n") for name in names], fontsize=7)
    else:  # echo, with the Node column and both floors: slanted, to stay apart
        ax.set_xticklabels(names, fontsize=6, rotation=30, ha="right")
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    top = max((m + h for m, h in zip(medians, high, strict=True)), default=0.0)
    for x, value, above in zip(positions, medians, high, strict=True):
        if value:
            label = f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
            ax.text(x, value + above + top * 0.02, label, ha="center", va="bottom", fontsize=6)
    ax.set_ylim(0, top * 1.15 if top else 1)


def plot(document: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = document["summary"]["servers"]
    scenarios = list(servers)
    if not scenarios:
        raise SystemExit("the results hold no successful run")
    fig, axes = plt.subplots(len(scenarios), 2, figsize=(9, 2.6 * len(scenarios)), squeeze=False)
    for row, scenario in enumerate(scenarios):
        entries = servers[scenario]
        names = list(entries)
        unit = next(iter(entries.values()))["unit"]
        _bars(
            axes[row][0],
            names,
            [entries[n]["throughput"] for n in names],
            f"{scenario}: {unit}/s (higher is better)",
        )
        _bars(
            axes[row][1],
            names,
            [entries[n]["cpu_us_per_unit"] for n in names],
            f"{scenario}: server CPU µs/{unit} (lower is better)",
        )
    meta = document.get("meta", {})
    machine = meta.get("machine", {})
    fig.suptitle(
        f"channels_sio vs python-socketio - {meta.get('rounds', '?')} rounds, "
        f"{machine.get('nproc', '?')} cores ({machine.get('cpu', '?')}), "
        f"{meta.get('pinning', '')}\nbars: median over the rounds, whiskers: min-max",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=Path, help="results JSON of bench/run.py")
    parser.add_argument("--out", type=Path, help="PNG to write")
    args = parser.parse_args(argv)
    source = args.results or newest_results()
    out = args.out or source.with_suffix(".png")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed: pip install matplotlib", file=sys.stderr)
        return 2
    plot(json.loads(source.read_text()), out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
