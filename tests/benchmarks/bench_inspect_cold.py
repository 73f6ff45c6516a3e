"""`workbench inspect light_densenet121.onnx --json` as a whole cold process against
`python -c "import onnx"`, side by side in one run (interleaved, median of the rounds), and
whether the inspect process imported torch or onnxruntime.

Run: .venv/bin/python tests/benchmarks/bench_inspect_cold.py [--rounds 5]
Target: inspect <= 1.5 x import onnx + 0.3 s, and neither torch nor onnxruntime imported.
Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECK = ("import runpy, sys; sys.argv = ['workbench', 'inspect', sys.argv[1], '--json'];\n"
         "try: runpy.run_module('workbench', run_name='__main__')\n"
         "except SystemExit: pass\n"
         "heavy = [m for m in ('torch', 'onnxruntime') if m in sys.modules]\n"
         "print('HEAVY', ','.join(heavy) or '-', file=sys.stderr)")


def densenet() -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend/test/data/light/light_densenet121.onnx"


def timed(cmd: list[str]) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - t, done.stderr


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    model = str(densenet())
    timed([sys.executable, "-c", "import onnx"])  # warm the file cache and .pyc files
    timed([sys.executable, "-m", "workbench", "inspect", model, "--json"])
    onnx_s, inspect_s = [], []
    heavy = set()
    for _ in range(args.rounds):
        onnx_s.append(timed([sys.executable, "-c", "import onnx"])[0])
        took, err = timed([sys.executable, "-c", CHECK, model])
        inspect_s.append(took)
        heavy |= {m for line in err.splitlines() if line.startswith("HEAVY ")
                  for m in line.split()[1].split(",") if m != "-"}
    base, ours = statistics.median(onnx_s), statistics.median(inspect_s)
    budget = 1.5 * base + 0.3
    print(f"cold process, median of {args.rounds}: import onnx {base:.2f} s   "
          f"workbench inspect densenet121 --json {ours:.2f} s")
    print(f"  ratio to budget (1.5 x import onnx + 0.3 s = {budget:.2f} s): {ours / budget:.2f}x "
          f"(target <= 1.0x); torch/onnxruntime imported: {sorted(heavy) or 'no'}")
    return 0 if ours <= budget and not heavy else 1


if __name__ == "__main__":
    sys.exit(main())
