"""The benchmark's table for the terminal: the variants side by side, then packing and the
ablation."""

from __future__ import annotations

from typing import Any

from .variants import VARIANTS


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def format_table(result: dict[str, Any]) -> str:
    """The variants side by side (images/s, ms/step, relative to the ceiling), then the
    packed jobs and the ablation, if measured."""
    s = result.get("settings", {})
    m = result.get("machine", {})
    ceiling = (result.get("ceiling") or {}).get("images_per_second")
    lines = []
    if s:
        lines.append(
            f"{s['model']}, batch {s['batch_size']}, {s['precision']}, "
            f"{s['warmup_steps']} warm-up + {s['steps']} timed steps, "
            f"{s['data']['train_images']:,} {s['data']['source']} training images"
        )
    if m:
        lines.append(f"device: {m.get('device')}; torch {m.get('torch')}")
    header = f"{'variant':<14}{'images/s':>12}{'ms/step':>11}{'vs ceiling':>12}{'ops/step':>10}"
    lines += [header, "-" * len(header)]

    def row(name: str, entry: dict[str, Any]) -> str:
        ips = entry["images_per_second"]
        rel = f"{100.0 * ips / ceiling:.0f}%" if ceiling else "-"
        ops = entry.get("ops_per_step")
        return (
            f"{name:<14}{_fmt_rate(ips):>12}{entry['ms_per_step']:>11.1f}{rel:>12}"
            f"{'-' if ops is None else ops:>10}"
        )

    for variant in VARIANTS:
        if result.get(variant):
            name = variant
            if variant == "dataloader" and "workers" in result[variant]:
                name = f"dataloader/{result[variant]['workers']}w"
            lines.append(row(name, result[variant]))
    packed = result.get("packed")
    if packed:
        if "error" in packed:
            lines.append(f"packed x{packed['jobs']}: failed: {packed['error']}")
        else:
            lines.append(
                row(f"packed x{packed['jobs']}", packed) + "  (aggregate; ms/step per job)"
            )
    ablation = result.get("ablation")
    if ablation:
        lines.append(
            "ablation: trainer with one switch changed (speed-up = what the "
            "configured setting buys)"
        )
        for e in ablation:
            label = f"{e['switch']} {e['configured']}"
            if e["status"] == "measured":
                label += f" -> {e['changed_to']}"
                lines.append(
                    f"  {label:<30}{_fmt_rate(e['images_per_second']):>10} images/s"
                    f"  speed-up x{e['switch_speedup']:.2f}"
                )
            else:
                lines.append(f"  {e['switch']:<30}{e['status']}: {e['reason']}")
    grid = result.get("compile")
    if grid:
        lines.append(
            "compile table: trainer per device.compile mode, fresh process each (first step: "
            "compilation included)"
        )
        head = ("compile", "channels_last", "images/s", "ops/step", "1st step s")
        lines.append(f"  {head[0]:<8}{head[1]:>14}{head[2]:>11}{head[3]:>10}{head[4]:>12}")
        for r in grid:
            label = f"  {r['compile']:<8}{str(r['channels_last']):>14}"
            if r["status"] != "measured":
                lines.append(f"{label}  {r['status']}: {r['reason']}")
                continue
            lines.append(
                f"{label}{_fmt_rate(r['images_per_second']):>11}{r.get('ops_per_step', '-'):>10}"
                f"{r.get('first_step_seconds') or 0:>12.1f}"
            )
    if result.get("peak_memory_mb") is not None:
        lines.append(
            f"peak memory: {result['peak_memory_mb']:,.0f} MB, "
            f"{result.get('peak_memory_source', '')}"
        )
    return "\n".join(lines)
