"""`python -m bench.run`: every section, each in its own process; one table; latest.json.

  python -m bench.run                  everything (about 2.5 minutes on 2 cores)
  python -m bench.run --only asgi,redis
  BENCH_QUICK=1 python -m bench.run    tiny samples: checks the suite runs, measures nothing
                                       (writes bench/results/quick.json instead)

Each section runs in a fresh interpreter, so no section's threads, caches or garbage weigh on
another's timings; a section that fails is reported and the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, quick

SECTIONS = {
    "asgi": "bench.asgi_bench",
    "django": "bench.django_bench",
    "redis": "bench.redis_bench",
    "scale": "bench.scale_bench",
    "server": "bench.server_bench",
    "challenge": "bench.challenge_bench",
    "django_store": "bench.django_store_bench",
    "factors": "bench.factors_bench",
    "memory": "bench.memory_bench",
    "sizing": "bench.redis_sizing_bench",
    "api": "bench.api_bench",
    "flask": "bench.flask_bench",
}
SECTION_TIMEOUT = 600


def run_section(name: str, out: Path) -> None:
    """In this process: run one section and write its JSON to `out`."""
    module = importlib.import_module(SECTIONS[name])
    result: dict[str, Any] = module.run()
    out.write_text(json.dumps(result, indent=1, default=str))


def spawn_section(name: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"mfa-bench-{name}-") as tmp:
        out = Path(tmp) / "result.json"
        started = time.perf_counter()
        load_before = [round(x, 2) for x in os.getloadavg()]
        try:
            proc = subprocess.run(  # noqa: S603 (our own interpreter and module)
                [sys.executable, "-m", "bench.run", "--section", name, "--out", str(out)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=SECTION_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {SECTION_TIMEOUT} s"}
        seconds = round(time.perf_counter() - started, 1)
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout)[-3000:]
            return {"error": f"exit {proc.returncode}", "output": tail, "seconds": seconds}
        result: dict[str, Any] = json.loads(out.read_text())
        result["seconds"] = seconds
        result["load_average"] = {
            "before": load_before,
            "after": [round(x, 2) for x in os.getloadavg()],
        }
        return result


def git_commit() -> str:
    """The commit measured (BENCH_COMMIT names it for a run from an exported tree)."""
    if label := os.environ.get("BENCH_COMMIT"):
        return label
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "unknown"
    commit = proc.stdout.strip() or "unknown"
    return commit + ("+dirty-src" if dirty.stdout.strip() else "")


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# -- printing ---------------------------------------------------------------------------------


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [columns, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _verdict(met: bool | None) -> str:
    return "pending" if met is None else ("met" if met else "MISSED")


def _measured(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render(report: dict[str, Any]) -> str:
    lines = [
        f"mfa_middleware benchmarks  commit {report['commit']}  {report['generated_at']}",
        f"{report['machine']['platform']}, {report['machine']['cpus']} CPUs, "
        f"Python {report['machine']['python']}"
        + ("  (QUICK MODE: not measurements)" if report["quick"] else ""),
        "",
    ]
    for name, section in report["sections"].items():
        if "error" in section:
            lines += [f"== {name}: FAILED ({section['error']})", section.get("output", ""), ""]
            continue
        load = section.get("load_average", {}).get("after", ["?"])[0]
        lines.append(f"== {section['title']}  [{section.get('seconds', '?')} s, load {load}]")
        lines += _table(section["columns"], section["rows"])
        lines += [f"   * {note}" for note in section.get("notes", [])]
        lines.append("")
    lines.append("== Targets")
    rows = [
        [t["id"], t["target"], _measured(t["measured"]), _verdict(t["met"]), t["note"]]
        for t in report["targets"]
    ]
    lines += _table(["target", "goal", "measured", "verdict", "note"], rows)
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="same as BENCH_QUICK=1")
    parser.add_argument("--section", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        os.environ["BENCH_QUICK"] = "1"
    if args.section:
        run_section(args.section, Path(args.out))
        return 0
    names = list(SECTIONS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SECTIONS]
        if unknown:
            parser.error(f"unknown section(s): {', '.join(unknown)}")
    report: dict[str, Any] = {
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine(),
        "quick": quick(),
        "command": "python -m bench.run" + (f" --only {args.only}" if args.only else ""),
        "sections": {},
        "targets": [],
    }
    started = time.perf_counter()
    for name in names:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        section = spawn_section(name)
        report["sections"][name] = section
        report["targets"] += section.get("targets", [])
        if "error" in section:
            print(f"[bench] {name} FAILED: {section['error']}", file=sys.stderr)
            print(section.get("output", ""), file=sys.stderr)
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("quick.json" if quick() else "latest.json")
    if args.only and not quick() and out.exists():
        # a partial run updates its sections and keeps the others from the last full run
        previous = json.loads(out.read_text())
        previous["sections"].update(report["sections"])
        previous["targets"] = [
            t for s in previous["sections"].values() for t in s.get("targets", [])
        ]
        previous.update({k: report[k] for k in ("generated_at", "commit", "machine")})
        previous["partial_update"] = report["command"]
        report = previous
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    text = render(report)
    print(text)
    print(f"\nraw figures: {out.relative_to(ROOT)}  ({report['total_seconds']} s)")
    failed = [n for n, s in report["sections"].items() if "error" in s]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
