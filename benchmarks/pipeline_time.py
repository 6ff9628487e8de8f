"""How long does the whole default pipeline take here, stage by stage, and how much memory?

    python -m benchmarks.pipeline_time [STAGE ...]

Copies the project (the files git would commit) to a scratch folder that shares this checkout's DVC cache, and
there runs every stage of dvc.yaml alone with `dvc repro --force --single-item`, in `dvc stage list` order (a
topological one), recording each stage's seconds and peak memory in reports/benchmarks/pipeline_time.json,
with each stage's work, bound and share of it (benchmarks/compute.py, whose float32 matrix-product peak is
measured first, on the idle machine). As long as a full `make repro` (the speed page, reports/speed.md, says
how long); this checkout's outputs are not touched. Because the cache is shared, what the copy trains lands in
DVC's run cache, and a `dvc repro` here afterwards restores those stages instead of training them again. The
file is rewritten after every stage, so an interrupted run keeps what it measured (`complete` says whether it
got through). Naming stages times only those again (their inputs restored from the cache) and replaces their
rows, marked `retimed`, for a stage that other work on the machine slowed or that a change added; the work is
counted again (not the peak), and rows of stages no longer in the pipeline are dropped. A stage of the
benchmarks pipeline (benchmarks/dvc.yaml).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import paths
from stages import files

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = paths.PIPELINE_TIME


def dvc(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", *args], cwd=cwd, check=True, text=True, **kwargs)


def scratch_copy(dest: Path) -> None:
    """The project as git would commit it, a git repository of its own using this checkout's DVC cache."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for name in listed:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    git = ["git", "-c", "user.name=pipeline_time", "-c", "user.email=pipeline_time@localhost"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "pipeline_time"]):  # DVCLive wants a commit
        subprocess.run(git + command, cwd=dest, check=True)
    dvc("config", "--local", "cache.dir", str(ROOT / ".dvc" / "cache"), cwd=dest)


def run_stage(name: str, cwd: Path) -> dict:
    start = time.perf_counter()
    process = subprocess.Popen(["dvc", "repro", "--force", "--single-item", name], cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if status:
        raise SystemExit(f"pipeline_time: stage {name} failed (run `dvc repro {name}` to see why)")
    # ru_maxrss of a waited-for child covers its own waited-for children: the stage's process.
    return {"stage": name, "seconds": round(time.perf_counter() - start, 1), "peak_mb": round(usage.ru_maxrss / 1024)}


def yardstick(*options: str) -> dict:
    """benchmarks.compute in its own process (Keras stays out of this one): the peak, and each stage's work."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.compute", *options], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def efficiency(result: dict) -> None:
    """Each stage's bound (its work at the peak) and share (bound over measured time), and the whole's."""
    peak, work = result["matmul_peak_gflops"], result["work_gflop"]
    for stage in result["stages"]:
        bound = work.get(stage["stage"], 0.0) / peak
        stage |= {"work_gflop": work.get(stage["stage"], 0.0), "bound_seconds": round(bound, 1),
                  "share": round(bound / stage["seconds"], 3)}
    result["bound_seconds"] = round(sum(s["bound_seconds"] for s in result["stages"]), 1)
    result["share"] = round(result["bound_seconds"] / result["seconds"], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", help="time only these stages again (default: every stage)")
    args = parser.parse_args()
    names = dvc("stage", "list", "--name-only", cwd=ROOT, capture_output=True).stdout.split()
    names = [name for name in names if "/" not in name]  # the main pipeline's, not this one's
    if unknown := set(args.stages) - set(names):
        parser.error(f"no such stage: {', '.join(sorted(unknown))} (see `dvc stage list`)")
    if args.stages and not OUTPUT.exists():
        parser.error(f"no {OUTPUT} to amend: time the whole pipeline first")
    todo = args.stages or names
    if args.stages:
        result = files.read_json(OUTPUT) | yardstick("--work-only")
        result["stages"] = [s for s in result["stages"] if s["stage"] in names]
    else:
        result = {"cores": os.cpu_count(), "stages": []} | yardstick()
    with tempfile.TemporaryDirectory(prefix="pipeline-time-") as scratch:
        copy = Path(scratch)
        scratch_copy(copy)
        if args.stages:
            dvc("checkout", "--quiet", cwd=copy)  # the named stages' inputs, from the shared cache
        print(f"dvc repro --force, one stage at a time ({len(todo)} stages), in {copy}:")
        for i, name in enumerate(todo, 1):
            timing = run_stage(name, copy) | ({"retimed": True} if args.stages else {})
            rows = [s for s in result["stages"] if s["stage"] != name] + [timing]
            result["stages"] = sorted(rows, key=lambda s: names.index(s["stage"]))
            result["complete"] = {s["stage"] for s in result["stages"]} == set(names)
            result["seconds"] = round(sum(s["seconds"] for s in result["stages"]), 1)
            efficiency(result)
            files.write_json(OUTPUT, result)
            print(f"  [{i}/{len(todo)}] {name:<32} {timing['seconds']:7.1f} s  peak {timing['peak_mb']:6,} MB",
                  flush=True)
    print(f"whole pipeline {result['seconds'] / 60:.1f} minutes, {result['share']:.0%} of its compute bound "
          f"({result['bound_seconds'] / 60:.1f} minutes at {result['matmul_peak_gflops']:.0f} GFLOP/s); largest peak "
          f"{max(s['peak_mb'] for s in result['stages']):,} MB; wrote {OUTPUT}")


if __name__ == "__main__":
    main()
