"""How long does the whole default pipeline take here, stage by stage, and how much memory?

    .venv/bin/python benchmarks/pipeline_time.py

Runs every stage of dvc.yaml alone with `dvc repro --force --single-item`, in `dvc stage list`
order (a topological one), and records each stage's seconds and peak memory in
reports/benchmark_pipeline.json, which the report's speed section reads. It rebuilds every
output of the working tree with the current params: as long as a full `make repro` (105
minutes with the default params on 2 cores). The file is rewritten after every stage, so an
interrupted run keeps what it measured (`complete` says whether it got through).
"""

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
    names = subprocess.run(["dvc", "stage", "list", "--name-only"], capture_output=True, text=True,
                           check=True).stdout.split()
    result = {"cores": os.cpu_count(), "complete": False, "stages": []}
    print(f"dvc repro --force, one stage at a time ({len(names)} stages):")
    for i, name in enumerate(names, 1):
        result["stages"].append(timing := run_stage(name))
        result["complete"] = i == len(names)
        result["seconds"] = round(sum(s["seconds"] for s in result["stages"]), 1)
        files.write_json(OUTPUT, result)
        print(f"  [{i}/{len(names)}] {name:<32} {timing['seconds']:7.1f} s  peak {timing['peak_mb']:6,} MB",
              flush=True)
    print(f"whole pipeline {result['seconds'] / 60:.1f} minutes; largest peak "
          f"{max(s['peak_mb'] for s in result['stages']):,} MB; wrote {OUTPUT}")


if __name__ == "__main__":
    main()
