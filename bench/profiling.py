"""cProfile reports that show where one middleware's time goes: the direct callees of its
`__call__` (each with the cumulative time spent in it from there), a few levels down the flow,
and the functions of mfa_middleware by self time. Times are per request, under the profiler."""

from __future__ import annotations

import cProfile
import pstats
from pathlib import Path
from typing import Any

FuncKey = tuple[str, int, str]


def is_ours(key: FuncKey) -> bool:
    return "/mfa_middleware/" in key[0]


def short_name(key: FuncKey) -> str:
    filename, line, func = key
    for marker in ("/mfa_middleware/", "/site-packages/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            if marker == "/mfa_middleware/":
                filename = "mfa_middleware/" + filename
            break
    return f"{filename}:{line}({func})"


def callees(raw: dict[FuncKey, Any], parent: FuncKey) -> list[tuple[float, str]]:
    """Direct callees of `parent`, with the cumulative time spent in them from `parent`."""
    rows = []
    for func, (_cc, _nc, _tt, _ct, callers) in raw.items():
        if parent in callers:
            rows.append((float(callers[parent][3]), short_name(func)))
    return sorted(rows, reverse=True)


def write_report(
    profiler: cProfile.Profile,
    n: int,
    out: Path,
    title: str,
    root: tuple[str, str],
    drill: tuple[str, ...] = (),
    note: str = "",
) -> dict[str, Any]:
    """Write the report for `n` profiled requests; `root` is (file suffix, function) of the
    middleware's entry point, `drill` names functions of ours whose callees to list too."""
    raw: dict[FuncKey, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    us = 1e6 / n
    total = sum(v[2] for v in raw.values())
    ours_self = sum(v[2] for k, v in raw.items() if is_ours(k))
    lines = [
        title,
        "Times are per request under cProfile, which inflates small Python calls: read them as"
        " shares, not as absolute costs.",
        f"total {total * us:.1f} us/request; self time in mfa_middleware functions"
        f" {ours_self * us:.1f} us/request ({ours_self / total:.0%}).",
    ]
    if note:
        lines.append(note)
    lines.append("")
    breakdown: list[dict[str, Any]] = []
    entry = next((k for k in raw if k[0].endswith(root[0]) and k[2] == root[1]), None)
    if entry is not None:
        lines.append(f"{short_name(entry)} cumulative {raw[entry][3] * us:.1f} us; direct callees:")
        for edge, name in callees(raw, entry):
            lines.append(f"  {edge * us:8.2f} us  {name}")
            breakdown.append({"function": name, "us_per_request": round(edge * us, 2)})
        for parent_name in drill:
            parent = next((k for k in raw if is_ours(k) and k[2] == parent_name), None)
            if parent is None:
                continue
            lines.append(f"{short_name(parent)}: direct callees")
            for edge, name in callees(raw, parent)[:12]:
                lines.append(f"  {edge * us:8.2f} us  {name}")
        lines.append("")

    def table(rows: list[tuple[float, float, int, FuncKey]], limit: int) -> list[str]:
        return [
            f"  {tt * us:8.2f} us  cum {ct * us:8.2f} us  {calls / n:5.1f}x  {short_name(key)}"
            for tt, ct, calls, key in rows[:limit]
        ]

    ours_rows = sorted(((v[2], v[3], v[1], k) for k, v in raw.items() if is_ours(k)), reverse=True)
    every = sorted(((v[2], v[3], v[1], k) for k, v in raw.items()), reverse=True)
    lines.append("Functions of mfa_middleware by self time (self, cumulative, calls per request):")
    lines += table(ours_rows, 30)
    lines += ["", "All functions by self time (top 40):", *table(every, 40)]
    out.write_text("\n".join(lines) + "\n")
    return {
        "file": f"bench/results/{out.name}",
        "requests": n,
        "profiled_us_per_request": round(total * us, 2),
        "ours_self_share": round(ours_self / total, 3),
        "middleware_callees": breakdown,
        "top_ours_self": [
            {"function": short_name(k), "self_us": round(tt * us, 2)}
            for tt, _ct, _calls, k in ours_rows[:12]
        ],
    }
