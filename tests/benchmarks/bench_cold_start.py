"""Cold start, process start to painted graph: Workbench against Netron, side by side in one
run (interleaved rounds, median of each).

Workbench: `python -m workbench MODEL` as a whole process, offscreen, with
WORKBENCH_EXIT_AFTER_PAINT=1 (the process ends right after its first painted graph): timed
from its launch, interpreter start included, to the `painted_at=` it prints at that paint;
its exit afterwards is not timed (as Netron's browser close is not), its CPU seconds are.
Netron: `netron MODEL` serves the model on loopback (started once per model, not timed);
each round launches a fresh headless Chromium (playwright-core) and times launch + open
until the graph's SVG nodes are visible (tests/benchmarks/netron_paint.mjs).

Netron needs, outside the project's venv: `pip install netron` (a separate venv), Debian's
`chromium` and npm's `playwright-core`. Point at them with NETRON (the netron executable),
CHROMIUM and PLAYWRIGHT_CORE_DIR (the folder holding node_modules/playwright-core); by default
they are looked for under /tmp/coldstart and on PATH. Where one is missing, Netron is skipped
with a message and only Workbench's times are printed.

Besides wall time, the CPU seconds of each process tree (user + system, children included:
for Netron, node, playwright and every Chromium process) are printed: on a loaded machine
they say more than the wall clock.

Run: .venv/bin/python tests/benchmarks/bench_cold_start.py [--rounds 3] [--chain 10000]
Targets: light_zfnet512 <= 1.0x Netron; light_densenet121 and the chain <= 0.5x Netron.
Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SCRATCH = Path("/tmp/coldstart")
TARGETS = {"light_zfnet512": 1.0, "light_densenet121": 0.5, "chain": 0.5}


def light(name: str) -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend/test/data/light" / f"{name}.onnx"


def chain_model(folder: Path, n_nodes: int) -> Path:
    sys.path.insert(0, str(REPO))
    from tests.big_onnx import make_big_onnx

    return make_big_onnx(folder / f"chain_{n_nodes}.onnx", n_nodes=n_nodes)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def workbench_once(model: Path, config: Path) -> tuple[float, float, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "QT_QPA_PLATFORM": "offscreen",
           "WORKBENCH_EXIT_AFTER_PAINT": "1", "WORKBENCH_CONFIG_DIR": str(config),
           "HF_HUB_OFFLINE": "1"}
    # an installed app has its .pyc files (pip compiles them); the warm-up run writes them
    # for the checkout, even where the caller's shell says not to
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cpu, t = _children_cpu(), time.time()
    done = subprocess.run([sys.executable, "-m", "workbench", str(model)], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    cpu = _children_cpu() - cpu
    painted = [line for line in done.stderr.splitlines() if "first paint" in line]
    at = [line.split("=", 1)[1] for line in done.stderr.splitlines()
          if line.startswith("painted_at=")]
    if done.returncode != 0 or not painted or not at:
        raise RuntimeError(f"workbench did not paint {model.name}: {done.stderr[-800:]}")
    # from the process's launch to its painted graph (the clock the process printed then);
    # its exit afterwards is not counted, as Netron's is not (nor the browser's close)
    return float(at[0]) - t, cpu, painted[0]


class Netron:
    """Netron's server on loopback and a Chromium launcher, or the reason they are missing."""

    def __init__(self) -> None:
        self.netron = os.environ.get("NETRON") or _first_file(
            SCRATCH / "netron-venv/bin/netron", shutil.which("netron"))
        self.chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") \
            or shutil.which("chromium-browser")
        self.playwright = os.environ.get("PLAYWRIGHT_CORE_DIR") or str(SCRATCH)
        self.node = shutil.which("node")
        missing = [what for what, ok in (
            ("netron (pip install netron into a separate venv; or set NETRON)", self.netron),
            ("Debian's chromium (apt-get install chromium; or set CHROMIUM)", self.chromium),
            ("node", self.node),
            ("npm's playwright-core (npm install playwright-core in PLAYWRIGHT_CORE_DIR)",
             (Path(self.playwright) / "node_modules/playwright-core").is_dir()))
            if not ok]
        self.missing = "; ".join(missing)
        self._server: subprocess.Popen[bytes] | None = None
        self.url = ""

    def serve(self, model: Path) -> None:
        self.stop()
        port = _free_port()
        self._server = subprocess.Popen(
            [str(self.netron), "-p", str(port), "--host", "127.0.0.1", str(model)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("netron's server did not answer on loopback within 60 s")

    def once(self) -> tuple[float, float, int]:
        cpu = _children_cpu()
        done = subprocess.run(
            [str(self.node), str(HERE / "netron_paint.mjs"), self.playwright,
             str(self.chromium), self.url, "300"],
            capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"netron did not paint: {done.stderr[-800:]}")
        cpu = _children_cpu() - cpu
        result = json.loads(done.stdout.strip().splitlines()[-1])
        return float(result["seconds"]), cpu, int(result["nodes"])

    def stop(self) -> None:
        if self._server is not None:
            self._server.terminate()
            self._server.wait(timeout=30)
            self._server = None


def _first_file(*paths: object) -> str | None:
    return next((str(p) for p in paths if p and Path(str(p)).is_file()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chain", type=int, default=10_000, help="nodes in the chain model")
    parser.add_argument("--no-netron", action="store_true")
    parser.add_argument("--only", choices=sorted(TARGETS), action="append",
                        help="measure only this model (repeatable)")
    args = parser.parse_args()
    netron = Netron()
    if args.no_netron:
        netron.missing = "--no-netron"
    if netron.missing:
        print(f"Netron skipped: missing {netron.missing}.")
    ok = True
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = {"light_zfnet512": light("light_zfnet512"),
                  "light_densenet121": light("light_densenet121"),
                  "chain": chain_model(folder, args.chain)}
        models = {k: v for k, v in models.items() if not args.only or k in args.only}
        for key, model in models.items():
            workbench_once(model, folder)  # warm the file cache and .pyc files
            wb, nt, wb_cpu, nt_cpu = [], [], [], []
            nodes, netron_nodes = "", 0
            if not netron.missing:
                netron.serve(model)
                netron.once()
            for _ in range(args.rounds):  # interleaved: both see the same load
                seconds, cpu, nodes = workbench_once(model, folder)
                wb.append(seconds)
                wb_cpu.append(cpu)
                if not netron.missing:
                    seconds, cpu, netron_nodes = netron.once()
                    nt.append(seconds)
                    nt_cpu.append(cpu)
            netron.stop()
            w, w_cpu = statistics.median(wb), statistics.median(wb_cpu)
            count = nodes.split("first paint: ")[1].split(" ")[0]
            if nt:
                n, n_cpu = statistics.median(nt), statistics.median(nt_cpu)
                ratio = w / n
                met = ratio <= TARGETS[key]
                ok = ok and met
                rows.append(f"{key:18} {count:>7} {n:8.2f} s {w:10.2f} s {ratio:6.2f}x "
                            f"<= {TARGETS[key]:.1f}x  {'ok' if met else 'MISSED':6}"
                            f" | cpu {n_cpu:6.2f} s {w_cpu:6.2f} s {w_cpu / n_cpu:5.2f}x"
                            f"   (netron drew {netron_nodes} boxes)")
            else:
                rows.append(f"{key:18} {count:>7} {'-':>10} {w:10.2f} s {'':24}"
                            f" | cpu {'-':>8} {w_cpu:6.2f} s")
            print(f"{key}: workbench {[round(x, 2) for x in wb]} (cpu "
                  f"{[round(x, 2) for x in wb_cpu]})"
                  + (f", netron {[round(x, 2) for x in nt]} (cpu "
                     f"{[round(x, 2) for x in nt_cpu]})" if nt else ""), flush=True)
    print(f"\ncold start to painted graph, median of {args.rounds} "
          f"({os.cpu_count()} cores; load {os.getloadavg()[0]:.1f})")
    print(f"{'model':18} {'nodes':>7} {'netron':>10} {'workbench':>12} {'ratio':>7} target"
          f"{'':11} | cpu: netron, workbench, ratio")
    for row in rows:
        print(row)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
