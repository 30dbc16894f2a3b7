"""Instructions per request, counted by valgrind (callgrind), for one variant.

Wall-clock timings on a shared two-core machine move by tens of percent while other
work runs; instruction counts do not. This runs a variant's in-process driver under
`valgrind --tool=callgrind` twice (N1 and N2 requests) and reports
(I(N2) - I(N1)) / (N2 - N1): the instructions one request costs, setup excluded.

    .venv/bin/python bench/instructions.py bare lightkeeper pfi
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def drive(name: str, n: int) -> None:
    from bench.overhead import _drive
    from bench.variants import ITEM_PATH, VARIANTS

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    app = VARIANTS[name][1]()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(_drive(app, ITEM_PATH, 200))  # warm caches before counting
    loop.run_until_complete(_drive(app, ITEM_PATH, n))


def count(name: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--drive",
                name,
                str(n),
            ],
            check=True,
            capture_output=True,
            cwd=str(ROOT),
        )
        summary = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M)
        assert summary is not None
        return int(summary.group(1))


def main() -> None:
    if sys.argv[1:2] == ["--drive"]:
        drive(sys.argv[2], int(sys.argv[3]))
        return
    n1, n2 = 200, 1200
    base = None
    print("| variant | instructions/request | overhead vs bare |")
    print("|---|---:|---:|")
    for name in ["bare", *[a for a in sys.argv[1:] if a != "bare"]]:
        per = (count(name, n2) - count(name, n1)) / (n2 - n1)
        base = per if name == "bare" else base
        extra = "-" if name == "bare" or base is None else f"{per - base:,.0f}"
        print(f"| {name} | {per:,.0f} | {extra} |", flush=True)


if __name__ == "__main__":
    main()
