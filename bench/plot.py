"""The capacity benchmark's figure: CPU µs per forwarded packet and receiver loss against N, for
both SFUs, from ``bench/results/capacity.json`` (matplotlib, Agg backend: no display needed).

    python -m bench.plot bench/results/capacity.json docs/performance.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

LABELS = {"giaoban": "Giao Ban SFU", "janus": "Janus VideoRoom"}
STYLE = {"giaoban": {"color": "#c0392b", "marker": "o"}, "janus": {"color": "#2c3e50", "marker": "s"}}


def plot(document: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = document.get("runs", [])
    figure, (cost, loss) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    for sfu in sorted({r["sfu"] for r in runs}):
        mine = sorted((r for r in runs if r["sfu"] == sfu), key=lambda r: r["receivers"])
        label = LABELS.get(sfu, sfu)
        style = STYLE.get(sfu, {})
        points = [(r["receivers"], r["cpu_us_per_packet"]) for r in mine if r.get("cpu_us_per_packet") is not None]
        if points:
            cost.plot(*zip(*points, strict=True), label=label, clip_on=False, **style)
        points = [(r["receivers"], r["loss_percent"]) for r in mine if r.get("loss_percent") is not None]
        if points:
            loss.plot(*zip(*points, strict=True), label=label, clip_on=False, **style)
    cost.set(title="SFU CPU per forwarded packet", xlabel="receivers (N)", ylabel="CPU µs per packet")
    loss.set(title="Receiver loss (RTP sequence gaps)", xlabel="receivers (N)", ylabel="loss %")
    limit = float(document.get("settings", {}).get("loss_limit_percent", 1.0))
    loss.axhline(limit, color="#999999", linestyle="--", linewidth=0.8, label=f"limit ({limit:g} %)")
    worst = max((float(r["loss_percent"]) for r in runs if r.get("loss_percent") is not None), default=0.0)
    loss.set_ylim(0, max(1.5 * limit, 1.1 * worst))
    cost.set_ylim(bottom=0)
    for axes in (cost, loss):
        axes.grid(True, alpha=0.3)
        axes.legend()
    media = document.get("media", {}).get("layers", {})
    full, small = media.get("full", {}), media.get("small", {})
    machine = document.get("machine", {})
    figure.suptitle(f"One presenter (VP8 {full.get('width')}×{full.get('height')} ~{full.get('kbit_s')} kbit/s + "
                    f"{small.get('width')}×{small.get('height')} + Opus) to N muted receivers on loopback; "
                    f"{machine.get('cores')} cores", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", type=Path, help="bench/results/capacity.json")
    parser.add_argument("png", type=Path, help="the figure to write, e.g. docs/performance.png")
    args = parser.parse_args(argv)
    plot(json.loads(args.json.read_text()), args.png)
    print(f"plotted: {args.png}")


if __name__ == "__main__":
    main()
