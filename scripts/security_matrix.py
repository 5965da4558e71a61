"""Write the checklist matrix in docs/security.md from the tests' `checklist` markers.

python scripts/security_matrix.py          # rewrite the matrix
python scripts/security_matrix.py --check  # exit 1 when it is out of date (the tests do too)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.security.traceability import DOC, rendered


def main(argv: list[str]) -> int:
    current = DOC.read_text(encoding="utf-8")
    fresh = rendered(current)
    if "--check" in argv:
        if fresh != current:
            print("docs/security.md is out of date: run `make security-matrix`", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(fresh, encoding="utf-8")
    shown = DOC.relative_to(Path.cwd()) if DOC.is_relative_to(Path.cwd()) else DOC
    print(f"wrote the matrix in {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
