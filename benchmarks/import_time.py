"""Time of `import pax_trax` in a fresh interpreter, against `import jax` alone.

Run: python benchmarks/import_time.py [--repeats N]
Each repetition starts two fresh interpreters, one importing jax and one
importing pax_trax, alternately, and reports the medians; the difference is
what pax_trax adds on top of JAX.
"""

import argparse
import statistics
import subprocess
import sys

CODE = "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"


def time_import(mod):
    out = subprocess.run([sys.executable, "-c", CODE.format(mod=mod)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    jax_times, pax_times = [], []
    for _ in range(args.repeats):
        jax_times.append(time_import("jax"))
        pax_times.append(time_import("pax_trax"))
    jax_s, pax_s = statistics.median(jax_times), statistics.median(pax_times)
    print(f"import jax      : {jax_s:.3f} s (median of {args.repeats})")
    print(f"import pax_trax : {pax_s:.3f} s  (target < 1.5 s: {'pass' if pax_s < 1.5 else 'FAIL'})")
    print(f"added by pax_trax on top of jax: {pax_s - jax_s:+.3f} s")


if __name__ == "__main__":
    main()
