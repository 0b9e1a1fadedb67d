"""Benchmark: the per-trial cost of a sweep against one full pipeline run.

    .venv/bin/python benchmarks/bench_sweep.py [--spec sweeps/ptrecl.yaml] [--trials 20]
                                               [--jobs 1] [--workdir DIR] [--out [FILE]]

Both run in this process, on a copy of the project (its pipeline code and params.yaml) in a
scratch directory with a DVC cache and an MLflow store of its own, so nothing is reused from
earlier runs:

1. baseline: `dvc repro` of the whole pipeline, every stage run (the synthetic default unless the
   copied params.yaml says otherwise);
2. the sweep: `wsss sweep SPEC --trials N` with the Optuna engine; its trials reuse what the
   baseline left in the cache, as a sweep after a pipeline run does.

Prints the baseline's time, each trial's time and stages run, and the ratio of the mean trial to
the baseline (the issue's target: at most 0.10). --out writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from measure import Scratch, write_json  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="sweeps/ptrecl.yaml", help="sweep spec, relative to the project")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--workdir", default=None, help="scratch directory (default: a new temporary one, removed)")
    parser.add_argument("--out", nargs="?", const="benchmarks/results/sweep.json", default=None)
    args = parser.parse_args()

    with Scratch(ROOT, args.workdir, "sweep", ("sweeps",)) as scratch:
        project, env = scratch.project, scratch.env
        start = time.monotonic()
        subprocess.run(["dvc", "repro"], cwd=project, env=env, check=True, stdout=subprocess.DEVNULL)
        baseline = time.monotonic() - start
        print(f"baseline: full pipeline `dvc repro` {baseline:.1f} s", flush=True)

        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "wsss.cli", "--project", str(project), "sweep", args.spec,
                        "--trials", str(args.trials), "--jobs", str(args.jobs)], env=env, check=True)
        sweep_seconds = time.monotonic() - start

        import optuna

        name = Path(args.spec).stem
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{project / '.wsss/sweeps' / name / 'optuna.db'}")
        trials = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
        per_trial = [t.user_attrs["seconds"] for t in trials]
        mean = statistics.mean(per_trial)
        print(f"\n{len(trials)} trials in {sweep_seconds:.1f} s (driver included); per trial: mean {mean:.1f} s, "
              f"median {statistics.median(per_trial):.1f} s, max {max(per_trial):.1f} s")
        print(f"per-trial cost / full pipeline run: {mean / baseline:.3f} (mean), "
              f"{sweep_seconds / len(trials) / baseline:.3f} (wall time of the whole sweep per trial)")
        if args.out:
            write_json(ROOT / args.out, {
                "baseline_seconds": baseline, "sweep_seconds": sweep_seconds, "trials": len(trials),
                "trial_seconds": per_trial, "ratio_mean_trial": mean / baseline,
                "ratio_sweep_wall_per_trial": sweep_seconds / len(trials) / baseline,
                "stages_ran": [t.user_attrs.get("stages_ran", []) for t in trials],
                "params": [t.params for t in trials],
            })
    return 0


if __name__ == "__main__":
    sys.exit(main())
