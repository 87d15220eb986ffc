"""A sweep's table (results.csv, results.json), its figure (results.png) and its summary."""

from __future__ import annotations

import csv
import io
import math
import sys
from collections import defaultdict

import numpy as np

from .. import fileio

MAX_PANELS = 6


def _row(point, result, grid, fixed) -> dict:
    row = {"point": point.name, **{k: point.values[k] for k in grid}, **{k: point.values[k] for k in fixed},
           "status": result["status"], "seconds": result.get("seconds")}
    row.update(result.get("headline", {}))
    row["error"] = result.get("error", "")
    return row


def write(plan, exp, results: dict, rerun: int) -> dict:
    """Write the table and figure of ``plan`` with ``results`` (point name -> result); return the
    table with a printable ``summary``."""
    rows, points = [], []
    for p in plan.points:
        result = results.get(p.name) or {"status": "not run", "error": "no result"}
        row = _row(p, result, plan.grid, plan.fixed)
        rows.append(row)
        points.append({**row, "folder": p.folder, "claims": result.get("claims", []),
                       "traceback": result.get("traceback", "")})
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    files = [plan.root / "results.csv", plan.root / "results.json"]
    fileio.write_atomic(files[0], buffer.getvalue().encode())
    table = {"experiment": plan.spec, "grid": plan.grid, "set": plan.fixed, "quick": plan.quick,
             "folder": str(plan.root), "points": points}
    fileio.save_json(files[1], table)
    figure = plan.root / "results.png"
    try:
        if _figure(rows, plan.grid, plan.fixed, figure, exp.name):
            files.append(figure)
    except Exception as exc:  # the table is written; a figure is not worth failing the sweep
        print(f"sweep: results.png failed ({type(exc).__name__}: {exc})", file=sys.stderr)
    table["summary"] = _summary(rows, rerun, files)
    return table


def _cell(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value.splitlines()[0] if isinstance(value, str) and value else value


def _summary(rows, rerun, files) -> str:
    ok = sum(r["status"] == "ok" for r in rows)
    lines = [f"{ok} of {len(rows)} points finished ({rerun} run now, {len(rows) - rerun} done before)"]
    lines += [f"FAILED {r['point']}: {r['error']}" for r in rows if r["status"] != "ok"]
    lines += [f"wrote {f}" for f in files]
    return "\n".join(lines)


def _numeric(rows, key) -> bool:
    values = [r.get(key) for r in rows if r.get(key) is not None]
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _figure(rows, grid, fixed, path, name) -> bool:
    """One panel per numeric headline number against the first grid field; one line per value of
    the other grid fields, with seeds as a band (mean, min to max). False if nothing to draw."""
    from .. import plotting

    plt = plotting.plt
    x_key = next(iter(grid))
    fixed_keys = {"point", "status", "seconds", "error", *grid, *fixed}
    metrics = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in fixed_keys and _numeric(rows, k)]
    metrics = metrics[:MAX_PANELS]
    if not metrics:
        return False
    group_keys = [k for k in grid if k not in (x_key, "seed")]
    x_values = list(grid[x_key])
    numeric_x = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x_values)
    positions = x_values if numeric_x else list(range(len(x_values)))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.8), squeeze=False)
    for ax, key in zip(axes[0], metrics):
        groups = defaultdict(lambda: defaultdict(list))
        for r in rows:
            if r["status"] == "ok" and isinstance(r.get(key), (int, float)):
                groups[tuple(r[k] for k in group_keys)][r[x_key]].append(float(r[key]))
        for group, by_x in groups.items():
            xs = [pos for pos, v in zip(positions, x_values) if by_x.get(v)]
            samples = [by_x[v] for v in x_values if by_x.get(v)]
            mean = [np.mean(s) for s in samples]
            label = ", ".join(f"{k}={v}" for k, v in zip(group_keys, group)) or name
            line, = ax.plot(xs, mean, marker="o", label=label)
            if any(len(s) > 1 for s in samples):
                ax.fill_between(xs, [min(s) for s in samples], [max(s) for s in samples], color=line.get_color(),
                                alpha=0.2)
        if numeric_x and min(x_values) > 0 and max(x_values) / min(x_values) >= 10:
            ax.set_xscale("log")
        ys = [v for by_x in groups.values() for s in by_x.values() for v in s]
        if ys and min(ys) > 0 and max(ys) / min(ys) >= 100:
            ax.set_yscale("log")
        if not numeric_x:
            ax.set_xticks(positions, [str(v) for v in x_values])
        ax.set_xlabel(x_key)
        ax.set_title(key, fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=7)
    seeds = " (band: min to max over seeds)" if "seed" in grid and x_key != "seed" else ""
    fig.suptitle(f"sweep of {name}{seeds}")
    plotting.save_figure(fig, path)
    return True
