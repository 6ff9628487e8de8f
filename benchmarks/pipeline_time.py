"""How long does the whole default pipeline take here, stage by stage, and how much memory?

    .venv/bin/python benchmarks/pipeline_time.py [STAGE ...]

Runs every stage of dvc.yaml alone with `dvc repro --force --single-item`, in `dvc stage list`
order (a topological one), and records each stage's seconds and peak memory in
reports/benchmarks/pipeline_time.json, which benchmarks/speed_report.py shows. It rebuilds every
output of the working tree with the current params: as long as a full `make repro` (about an
hour with the default params on 2 cores). The file is rewritten after every stage, so an
interrupted run keeps what it measured (`complete` says whether it got through). Naming stages
times only those again and replaces their rows, marked `retimed`, for a stage that other work on
the machine slowed.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stages import files, paths  # noqa: E402

OUTPUT = paths.BENCHMARK_PIPELINE


def run_stage(name: str) -> dict:
    start = time.perf_counter()
    process = subprocess.Popen(["dvc", "repro", "--force", "--single-item", name], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if status:
        raise SystemExit(f"pipeline_time: stage {name} failed (run `dvc repro {name}` to see why)")
    # ru_maxrss of a waited-for child covers its own waited-for children: the stage's process.
    return {"stage": name, "seconds": round(time.perf_counter() - start, 1), "peak_mb": round(usage.ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", help="time only these stages again (default: every stage)")
    args = parser.parse_args()
    names = subprocess.run(["dvc", "stage", "list", "--name-only"], capture_output=True, text=True,
                           check=True).stdout.split()
    if unknown := set(args.stages) - set(names):
        parser.error(f"no such stage: {', '.join(sorted(unknown))} (see `dvc stage list`)")
    if args.stages and not OUTPUT.exists():
        parser.error(f"no {OUTPUT} to amend: time the whole pipeline first")
    todo = args.stages or names
    result = files.read_json(OUTPUT) if args.stages else {"cores": os.cpu_count(), "stages": []}
    print(f"dvc repro --force, one stage at a time ({len(todo)} stages):")
    for i, name in enumerate(todo, 1):
        timing = run_stage(name) | ({"retimed": True} if args.stages else {})
        rows = [s for s in result["stages"] if s["stage"] != name] + [timing]
        result["stages"] = sorted(rows, key=lambda s: names.index(s["stage"]))
        result["complete"] = {s["stage"] for s in result["stages"]} == set(names)
        result["seconds"] = round(sum(s["seconds"] for s in result["stages"]), 1)
        files.write_json(OUTPUT, result)
        print(f"  [{i}/{len(todo)}] {name:<32} {timing['seconds']:7.1f} s  peak {timing['peak_mb']:6,} MB",
              flush=True)
    print(f"whole pipeline {result['seconds'] / 60:.1f} minutes; largest peak "
          f"{max(s['peak_mb'] for s in result['stages']):,} MB; wrote {OUTPUT}")


if __name__ == "__main__":
    main()
