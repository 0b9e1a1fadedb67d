"""Benchmark: the noise floor of the main job, i.e. how far each headline figure moves between
training seeds, for a baseline configuration and for params.yaml, measured in the same process.

    .venv/bin/python benchmarks/bench_noise.py [--project DIR] [--replicates N]
                                               [--baseline KEY=VALUE ...] [--after KEY=VALUE ...]
                                               [--targets STAGE ...] [--vary KEY]
                                               [--before-from FILE] [--out [FILE]]
    .venv/bin/python benchmarks/bench_noise.py --from-json benchmarks/results/noise.json

Runs the pipeline for project.seed = 0..N-1 (default 5) twice, each replicate a DVC experiment in
--project (default: this checkout, whose DVC run-cache makes a repeated run cheap): once with the
--baseline overrides (default: the classifier's 12 epochs, the default before issue 25) and once
with params.yaml as it is or with the --after overrides. --targets stops each replicate at those
stages (e.g. evaluate_refine, to measure one step of the chain at a fraction of the cost). Prints,
per headline figure, the standard deviation over the seeds before and after and their ratio, and
the paired orderings (CAM < CAM+IRN < PtReCl, segmentation vs its pseudo masks) with their 95% intervals, and for each step of the chain (seeds -> IRN ->
PtReCl's map -> its masks -> segmentation) how its figure follows its input's over the seeds: their
correlation and the standard deviation of the step (output - input), i.e. the noise the step's own
network adds. --out writes both studies, the ratios and the steps as JSON (default
benchmarks/results/noise.json); --from-json prints the report of such a file without running.
MLflow: one group run per configuration.

One network's own noise: --vary KEY (a training section's own seed, e.g. refine.irn.train.seed)
makes the second study vary KEY over 0..N-1 instead of project.seed, every other network trained
with project.seed as params.yaml has it; --before-from FILE takes the first study from a written
result (its "before") instead of running it again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from measure import write_json  # noqa: E402

from wsss.core import params as params_mod  # noqa: E402
from wsss.sweep import experiments, replicates  # noqa: E402
from wsss.tools.dvc_command import tool_env  # noqa: E402

RESULTS = "benchmarks/results/noise.json"
BASELINE = {"seeds.train.epochs": 12}  # the default before issue 25's noise study


def parse_override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--baseline wants KEY=VALUE, got {text!r}")
    return key, yaml.safe_load(value)


def study(project: Path, env: dict, count: int, name: str, overrides: dict, targets: tuple[str, ...] = (),
          seed_key: str = experiments.SEED_KEY) -> dict:
    """The replicate study of one configuration (``seed_key`` = 0..count-1), under a group run of its own."""
    params = params_mod.load(project / params_mod.PARAMS_FILE, overrides)
    group = experiments.start_group_run(project, params, "noise-floor", f"noise floor: {name} x{count}")
    import mlflow

    client = mlflow.MlflowClient()
    replicate_runs = replicates.run_seeds(project, env, count, group, overrides, prefix=f"noise-{name}", targets=targets,
                                          seed_key=seed_key)
    result = replicates.summarise(replicate_runs)
    client.log_batch(group, metrics=experiments.mlflow_metrics(replicates.flat_metrics(result)))
    client.set_terminated(group, "FINISHED")
    return result


def spread(before: dict, after: dict) -> dict:
    """Per metrics file, the mIoU's standard deviation over seeds before and after, and after/before."""
    rows = {}
    for stem, figures in after["figures"].items():
        old = before["figures"].get(stem, {}).get("miou", {}).get("sd")
        new = figures["miou"]["sd"]
        rows[stem] = {"method": figures["method"], "sd_before": old, "sd_after": new,
                      "ratio": None if not old else new / old}
    return rows


def chain_steps(result: dict) -> list[dict]:
    """For each figure after the first (metrics files in pipeline order), against the one before it:
    the correlation of their mIoUs over the seeds and the standard deviation of the step."""
    import numpy as np

    values = [(stem, np.array(figures["miou"]["values"])) for stem, figures in result["figures"].items()]

    def correlation(x, y) -> float | None:  # none where a figure does not move (its network held fixed)
        return None if min(np.ptp(x), np.ptp(y)) < 1e-9 else float(np.corrcoef(x, y)[0, 1])

    return [{"input": a, "output": b, "correlation": correlation(x, y),
             "sd_input": float(x.std(ddof=1)), "sd_output": float(y.std(ddof=1)),
             "sd_step": float((y - x).std(ddof=1))}
            for (a, x), (b, y) in zip(values, values[1:])]


def print_report(before: dict, after: dict, rows: dict) -> None:
    print(f"\n{'figure':12s} {'method':26s} {'sd before':>10s} {'sd after':>10s} {'ratio':>6s}")
    for stem, row in rows.items():
        old = "-" if row["sd_before"] is None else f"{100 * row['sd_before']:.2f} pt"
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        print(f"{stem:12s} {row['method']:26s} {old:>10s} {100 * row['sd_after']:7.2f} pt {ratio:>6s}")
    for name, result in (("before", before), ("after", after)):
        print(f"\npaired orderings, {name} (n = {len(result['seeds'])} seeds):")
        for difference in result["differences"].values():
            print(f"  {difference['other']} − {difference['reference']}: {difference['mean']:+.4f} "
                  f"(95% CI {difference['ci_low']:+.4f} to {difference['ci_high']:+.4f}) "
                  f"{'resolved' if difference['resolved'] else 'not resolved'}")
        print(f"steps of the chain, {name}: correlation with the input over the seeds, sd of output − input")
        for step in chain_steps(result):
            r = "  -  " if step["correlation"] is None else f"{step['correlation']:+.2f}"
            print(f"  {step['input']:>10s} -> {step['output']:10s} r {r}   "
                  f"sd {100 * step['sd_input']:.2f} -> {100 * step['sd_output']:.2f} pt, step {100 * step['sd_step']:.2f} pt")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", default=str(ROOT), help="the project whose pipeline runs (default: this one)")
    parser.add_argument("--replicates", type=int, default=5, metavar="N", help="seeds 0..N-1 (default 5)")
    parser.add_argument("--baseline", type=parse_override, action="append", default=None, metavar="KEY=VALUE",
                        help=f"the baseline's params overrides (default {BASELINE})")
    parser.add_argument("--after", type=parse_override, action="append", default=[], metavar="KEY=VALUE",
                        help="the second study's params overrides (default none: params.yaml as it is)")
    parser.add_argument("--targets", nargs="+", default=[], metavar="STAGE",
                        help="the stages each replicate runs, with their upstream stages (default all)")
    parser.add_argument("--vary", default=experiments.SEED_KEY, metavar="KEY",
                        help="the seed the second study varies (default project.seed; e.g. refine.irn.train.seed: "
                             "that network's own noise)")
    parser.add_argument("--before-from", type=Path, metavar="FILE",
                        help="the first study from a written result instead of running it")
    parser.add_argument("--out", nargs="?", const=RESULTS, default=None, help=f"write the results (default {RESULTS})")
    parser.add_argument("--from-json", type=Path, metavar="FILE", help="print the report of a written result, run nothing")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        print_report(saved["before"], saved["after"], saved["spread"])
        return 0
    if args.replicates < 2:
        parser.error("--replicates needs 2 or more seeds for a standard deviation")
    project = Path(args.project).resolve()
    env = tool_env()
    after_overrides, targets = dict(args.after), tuple(args.targets)
    if args.before_from:
        saved = json.loads(args.before_from.read_text())
        before, baseline = saved["before"], saved["baseline_overrides"]
    else:
        baseline = dict(args.baseline) if args.baseline else dict(BASELINE)
        before = study(project, env, args.replicates, "baseline", baseline, targets)
    name = "after" if after_overrides else "params"
    if args.vary != experiments.SEED_KEY:
        name += "-" + args.vary.replace(".", "-")
    after = study(project, env, args.replicates, name, after_overrides, targets, args.vary)
    rows = spread(before, after)
    print_report(before, after, rows)
    if args.out:
        write_json(ROOT / args.out, {"replicates": args.replicates, "baseline_overrides": baseline,
                                     "after_overrides": after_overrides, "after_varies": args.vary,
                                     "before_from": str(args.before_from) if args.before_from else None,
                                     "targets": list(targets),
                                     "cpus": os.cpu_count(), "spread": rows, "before": before, "after": after,
                                     "steps": {"before": chain_steps(before), "after": chain_steps(after)}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
