"""Benchmark: the default pipeline from scratch, stage by stage, against the committed figures.

    .venv/bin/python benchmarks/bench_pipeline.py [--workdir DIR] [--out [FILE]]
                                                  [--reference FILE] [--stages A,B,...]

Copies the project (pipeline code, params.yaml, dvc.yaml) into a scratch directory with a DVC
cache and an MLflow store of its own, so nothing is reused from earlier runs, then runs every
stage of dvc.yaml in pipeline order as `dvc repro --single-item STAGE` and records per stage:

- wall: seconds of the `dvc repro -s` call (so DVC's own start, about a second, is included);
- cpu: user + system seconds of that call and its children (the stage's process). On a shared
  machine wall times move with the load; CPU times much less, compare those.

Prints both per stage with the ratio to the committed figures (benchmarks/results/pipeline.json),
the totals, and each metrics file's mIoU beside the committed one (a speed-up must not cost
accuracy). --out writes this run's figures as JSON (default: that file).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from measure import Scratch, write_json  # noqa: E402

from wsss.core.dvcfile import pipeline  # noqa: E402

RESULTS = "benchmarks/results/pipeline.json"
def stage_names(project: Path) -> list[str]:
    """dvc.yaml's stages, in the file's order (which is the pipeline's order)."""
    return list(pipeline(project).stages)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_stage(stage: str, project: Path, env: dict, log) -> dict:
    cpu, start = children_cpu(), time.monotonic()
    subprocess.run(["dvc", "repro", "--single-item", stage], cwd=project, env=env, check=True,
                   stdout=log, stderr=subprocess.STDOUT)
    return {"wall_s": round(time.monotonic() - start, 2), "cpu_s": round(children_cpu() - cpu, 2)}


def ratio(new: float, old: float | None) -> str:
    return f"{new / old:6.2f}" if old else "     -"


def print_table(times: dict, reference: dict) -> None:
    print(f"\n{'stage':24s} {'wall s':>8s} {'ref':>8s} {'ratio':>6s}   {'cpu s':>8s} {'ref':>8s} {'ratio':>6s}")
    for stage, figures in times.items():
        ref = reference.get(stage, {})
        print(f"{stage:24s} {figures['wall_s']:8.1f} {ref.get('wall_s', float('nan')):8.1f} "
              f"{ratio(figures['wall_s'], ref.get('wall_s'))}   {figures['cpu_s']:8.1f} "
              f"{ref.get('cpu_s', float('nan')):8.1f} {ratio(figures['cpu_s'], ref.get('cpu_s'))}")
    total = {key: sum(f[key] for f in times.values()) for key in ("wall_s", "cpu_s")}
    shared = [s for s in times if s in reference]  # the ratio compares the stages both runs have
    now = {key: sum(times[s][key] for s in shared) for key in total}
    ref = {key: sum(reference[s][key] for s in shared) for key in total}
    print(f"{'total':24s} {total['wall_s']:8.1f} {ref['wall_s']:8.1f} {ratio(now['wall_s'], ref['wall_s'])}   "
          f"{total['cpu_s']:8.1f} {ref['cpu_s']:8.1f} {ratio(now['cpu_s'], ref['cpu_s'])}")


def print_headline(headline: dict, reference: dict) -> None:
    print("\nmIoU (metrics/*.json)  " + "  ".join(
        f"{name} {value:.4f}" + (f" (ref {reference[name]:.4f})" if reference.get(name) is not None else "")
        for name, value in headline.items() if value is not None))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=None, help="scratch directory (default: a new temporary one, removed)")
    parser.add_argument("--out", nargs="?", const=RESULTS, default=None, help=f"write the figures (default {RESULTS})")
    parser.add_argument("--reference", default=RESULTS, help="committed figures to compare with")
    parser.add_argument("--stages", default=None, help="comma-separated stages to run (their upstream must run too)")
    args = parser.parse_args()

    reference_file = ROOT / args.reference
    committed = json.loads(reference_file.read_text()) if reference_file.is_file() else {}
    reference = committed.get("stages", {})
    with Scratch(ROOT, args.workdir, "pipeline") as scratch:
        stages = stage_names(scratch.project)
        if args.stages:
            wanted = args.stages.split(",")
            unknown = sorted(set(wanted) - set(stages))
            if unknown:
                parser.error(f"unknown stages {unknown}; dvc.yaml has {stages}")
            stages = [s for s in stages if s in wanted]
        try:
            times = run_stages(scratch, stages)
        except subprocess.CalledProcessError:
            print(f"a stage failed; its log: {scratch.folder / 'dvc.log'}", file=sys.stderr)
            scratch.keep = True  # the scratch copy, to look at
            return 1
        print_table(times, reference)
        metrics = {p.stem: json.loads(p.read_text()) for p in sorted((scratch.project / "metrics").glob("*.json"))}
    headline = {name: values.get("miou") for name, values in metrics.items()}
    print_headline(headline, committed.get("headline", {}))
    if args.out:
        write_json(ROOT / args.out, {
            "cpus": os.cpu_count(), "stages": times,
            "total": {key: round(sum(f[key] for f in times.values()), 2) for key in ("wall_s", "cpu_s")},
            "headline": headline,
        })
    return 0


def run_stages(scratch: Scratch, stages: list[str]) -> dict:
    """Each stage in turn (its log in the scratch folder); wall and CPU seconds by stage."""
    times = {}
    with open(scratch.folder / "dvc.log", "w") as log:
        for stage in stages:
            times[stage] = run_stage(stage, scratch.project, scratch.env, log)
            print(f"{stage:24s} wall {times[stage]['wall_s']:7.1f} s  cpu {times[stage]['cpu_s']:7.1f} s", flush=True)
    return times


if __name__ == "__main__":
    sys.exit(main())
