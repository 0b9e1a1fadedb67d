"""The `wsss` command.

  wsss repro [dvc args]   run the pipeline (dvc repro) under one MLflow parent run, then print
                          the results table; stages DVC skips (up to date, or restored from its
                          run-cache) get a run too, tagged wsss.restored=true, read from their outputs
  wsss results            print the results table of the last run
  wsss ablate TABLE       run one of the seed papers' ablation tables as DVC experiments
                          (one MLflow run per row) and write results/ablations/TABLE.md;
                          `wsss ablate --list` names the tables
  wsss report             the methods side by side (seeds, pseudo masks, PtReCl, segmentation)
                          from the evaluation runs in MLflow; the plot is logged to MLflow
  wsss sweep SPEC         search params.yaml keys for the best value of a stage's metric
                          (sweeps/ptrecl.yaml) with Optuna or, `--engine ray`, Ray Tune (local
                          or `--address` of a cluster); each trial is a `dvc repro` in its own slot that
                          reuses every cached upstream stage and a nested MLflow run under the
                          sweep's parent run; a killed sweep resumes where it stopped; the best
                          params go to .wsss/sweeps/NAME/best_params.yaml; --register registers
                          the best trial's segmentation network (trials register none)
  wsss predict IMAGES...  segment image files (or folders of them) with a trained network:
                          --model models:/NAME/VERSION|latest (default: the registered model's
                          latest), runs:/RUN/model, a run id or a checkpoint; VOC palette PNGs
                          (and --overlay pictures) in --out
  wsss ui                 the MLflow UI over the project's runs (one worker, about 0.5 GB)
  wsss serve              the same network over HTTP (MLflow's scoring protocol, or an encoded image
                          as the body), on 127.0.0.1:5001 by default, with a request size, pixel and
                          inference size limit
  wsss gallery            one self-contained HTML page of chosen images (default: the worst, best and a
                          fixed sample by per-image IoU of the final pseudo masks) beside their ground
                          truth, seeds, refinements, PtReCl and segmentation masks, the stage `gallery`'s
                          code; default file results/gallery/index.html
  wsss check-params       validate params.yaml fully, as `wsss repro` does before DVC starts (run it
                          before a plain `dvc repro`: a stage failing on a bad value leaves its
                          outputs removed)
  wsss params schema      write params.yaml's JSON Schema (params.schema.json: every key's type,
                          default, range, unit and doc, for editor completion and hover docs)
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from wsss.core.errors import WsssError, disk_full, low_disk_space
from wsss.tools.dvc_command import tool_env

MLFLOW_SERVER = "http://127.0.0.1:5000"
MLFLOW_HINT = (
    "MLflow UI: {bin}wsss ui\n"
    "           then open {url} (experiment '{experiment}', {run})"
)


def _tool_dir() -> Path:
    """The folder of this interpreter's console scripts (dvc, mlflow), e.g. .venv/bin."""
    return Path(sys.executable).parent


def _print_mlflow_hint(experiment: str, experiment_id: str, run: str) -> None:
    from wsss.tracking.runs import experiment_url

    tools = os.path.relpath(_tool_dir(), Path.cwd())
    prefix = "" if os.environ.get("VIRTUAL_ENV") else f"{tools}{os.sep}"
    print(MLFLOW_HINT.format(bin=prefix, url=experiment_url(MLFLOW_SERVER, experiment_id), experiment=experiment,
                             run=run))


def cmd_ui(args) -> int:
    """`mlflow ui` over the project's store, sized for a laptop (wsss.tracking.runs.UI_ENV), from
    any shell: the mlflow beside this interpreter, whether or not the venv is active."""
    from wsss.core import params as params_mod
    from wsss.tracking import runs as tracking

    project = Path(args.project)
    experiment = params_mod.load(project / params_mod.PARAMS_FILE).tracking.experiment
    experiment_id = tracking.configure(experiment, project)
    command = tracking.ui_command(_tool_dir() / "mlflow", tracking.tracking_uri(project), args.host, args.port)
    print(f"MLflow UI: open {tracking.experiment_url(f'http://{args.host}:{args.port}', experiment_id)} "
          f"(experiment '{experiment}'); Ctrl-C stops it", flush=True)
    os.execve(command[0], command, dict(os.environ, **tracking.UI_ENV))


def cmd_results(args, check_stale: bool = True) -> int:
    """Print the results table; ``check_stale`` False where the whole pipeline just ran (nothing
    can be stale: saves a `dvc status`)."""
    from wsss.evaluation.metrics import format_table
    from wsss.evaluation.results import COLUMNS, NOT_UP_TO_DATE, SINGLE_RUN, STALE_NOTE, result_rows, stale_stages

    rows = result_rows(args.project, stale_stages(args.project) if check_stale else set())
    if not rows:
        print("no results yet: run `wsss repro` (or `dvc repro`) first", file=sys.stderr)
        return 1
    print(format_table(rows, COLUMNS))
    print(SINGLE_RUN)
    if any(NOT_UP_TO_DATE in (row["flags"] or "") for row in rows):
        print(STALE_NOTE)
    return 0


def cmd_check_params(args) -> int:
    from wsss.core import params
    from wsss.stages.preflight import check_all

    loaded = params.load(Path(args.project) / params.PARAMS_FILE)
    check_all(loaded, Path(args.project))
    _warn_synthetic_values(loaded, Path(args.project))
    print("params.yaml is valid")
    return 0


def _warn_synthetic_values(params, project: Path) -> None:
    from wsss.stages.presets import warn_synthetic_values

    warning = warn_synthetic_values(params, project)
    if warning:
        print(warning, file=sys.stderr)


def cmd_init(args) -> int:
    from wsss.stages.presets import apply_preset, load_preset, preset_names

    if args.list or not args.preset:
        for name in preset_names(args.project):
            values = load_preset(name, args.project)
            print(f"{name:15s} dataset {values['dataset.name']}, backbone {values['seeds.backbone.name']}")
        return 0 if args.list else 2
    changed = apply_preset(args.preset, args.project)
    print(f"params.yaml: preset {args.preset}, {len(changed)} value(s) changed"
          + (f": {', '.join(changed)}" if changed else " (it was already set)"))
    return 0


def cmd_params_schema(args) -> int:
    import json

    from wsss.core import params
    from wsss.core.io import atomic_path

    out = Path(args.project) / (args.out or params.SCHEMA_FILE)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(params.json_schema(), indent=1) + "\n")
    print(f"wrote {out}; params.yaml names it on its first line (yaml-language-server: $schema=...)")
    return 0


# After SIGINT/SIGTERM, how long the pipeline's processes get to stop before SIGKILL.
STOP_GRACE_S = 10.0


def _run_as_group(cmd: list[str], cwd: Path, env: dict) -> tuple[int, int | None]:
    """Run ``cmd`` as the leader of its own process group (it and every stage it starts).

    SIGINT / SIGTERM to us end the whole group: SIGTERM, then SIGKILL after STOP_GRACE_S, so
    no stage survives its driver and keeps writing. Returns (exit status, signal or None).
    """
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True)
    received: list[int] = []

    def on_signal(signum, frame):
        if not received:
            _signal_group(proc.pid, signal.SIGTERM)
        received.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        deadline = None
        while True:
            try:
                returncode = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if received and deadline is None:
                deadline = time.monotonic() + STOP_GRACE_S
            if deadline is not None and time.monotonic() > deadline:
                _signal_group(proc.pid, signal.SIGKILL)
        if received:  # stages outlive dvc by a moment: wait for the group, then kill what is left
            deadline = deadline or time.monotonic() + STOP_GRACE_S
            while _signal_group(proc.pid, 0) and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal_group(proc.pid, signal.SIGKILL)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return returncode, (received[0] if received else None)


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False when the group has no process left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # only zombies left, or the group id reused by another user
        return False
    return True


def cmd_repro(args) -> int:
    """dvc repro with a parent MLflow run that every stage nests under. params.yaml is checked
    fully first: a bad value must not fail a stage after DVC has removed its outputs."""
    from wsss.core import params as params_mod
    from wsss.stages.preflight import check_all
    from wsss.tracking import restore
    from wsss.tracking import runs as tracking

    project = Path(args.project)
    params = params_mod.load(project / params_mod.PARAMS_FILE)
    check_all(params, project)
    _warn_synthetic_values(params, project)
    if args.replicates is not None:
        return _repro_replicates(args, project)
    experiment_id = tracking.configure(params.tracking.experiment, project)
    _say_what_was_left(experiment_id)
    parent = tracking.start_parent_run(experiment_id, params, f"wsss-repro:{os.getpid()}", project)
    env = tool_env(**{tracking.PARENT_ENV: parent})
    returncode, stopped_by = _run_as_group(["dvc", "repro", *args.dvc_args], project, env)
    if stopped_by is not None:
        name = signal.Signals(stopped_by).name
        tracking.close_orphaned_runs(experiment_id)  # stages that needed SIGKILL
        tracking.stop_parent_run(parent, f"wsss repro received {name}; the pipeline was stopped")
        print(f"wsss repro: {name}: stopped the pipeline; finished stages are cached", file=sys.stderr)
        return 128 + stopped_by
    restored = []
    try:
        if returncode == 0:  # stages DVC skipped or took from its run-cache: runs from their outputs
            targets = [arg for arg in args.dvc_args if not arg.startswith("-")]
            restored = restore.record_restored(parent, project, params, targets, env)
        else:
            unrecorded = restore.fail_unrecorded(parent, project, env)
            if unrecorded:
                print(f"MLflow: {', '.join(unrecorded)} finished but DVC did not record the outputs: marked FAILED "
                      f"(tag {restore.UNRECORDED_TAG})", file=sys.stderr)
    finally:
        tracking.finish_parent_run(parent, returncode == 0)
    if returncode != 0:
        full = low_disk_space(project.resolve())
        print(f"dvc repro failed (exit {returncode}); " + (full if full else "fix the cause and run again: "
              "finished stages are cached and will not run twice"), file=sys.stderr)
        return returncode
    if restored:
        print(f"MLflow: {len(restored)} stage(s) DVC did not run recorded from their outputs "
              f"(tag {tracking.RESTORED_TAG}=true): {', '.join(restored)}")
    print()
    cmd_results(args, check_stale=bool(args.dvc_args))  # a target or an option (-s): some stages may not have run
    print()
    _print_mlflow_hint(params.tracking.experiment, experiment_id, "newest parent run")
    return 0


def _say_what_was_left(experiment_id: str) -> None:
    """Close the runs killed processes left RUNNING, and say what the last pipeline run left."""
    from wsss.tracking import runs as tracking

    closed = tracking.close_orphaned_runs(experiment_id)
    if closed:
        print(f"MLflow: closed {len(closed)} run(s) that killed processes left RUNNING (KILLED, tag "
              f"{tracking.ORPHANED_TAG})")
    left = tracking.last_pipeline_unfinished(experiment_id)
    if left:
        print(f"MLflow: {left}")


def _repro_replicates(args, project: Path) -> int:
    from wsss.sweep.replicates import markdown, run_replicates

    if args.jobs < 1:
        raise WsssError(f"--jobs must be 1 or more, got {args.jobs}")
    study = run_replicates(project, args.replicates, tool_env(), dvc_args=tuple(args.dvc_args), jobs=args.jobs)
    print()
    print(markdown(study))
    return 0


def cmd_verify(args) -> int:
    from wsss.evaluation.metrics import format_table
    from wsss.sweep.replicates import STUDY_METRICS, verify

    rows = verify(Path(args.project))
    print(format_table([row | {"inside": "yes" if row["inside"] else "NO"} for row in rows],
                       ["stage", "figure", "this run", "replicates (mean)", "expected range", "inside"]))
    outside = [f"{row['stage']} {row['figure']}" for row in rows if not row["inside"]]
    if outside:
        print(f"outside the 95% prediction interval of {STUDY_METRICS}: {', '.join(outside)}; about 1 figure in "
              "20 is by chance (docs/statistics.md)")
        return 1
    print(f"every figure falls inside the 95% prediction interval of the replicate study ({STUDY_METRICS})")
    return 0


def cmd_ablate(args) -> int:
    from wsss.sweep.ablation import TABLES, run_table

    if args.list or not args.table:
        for name, table in TABLES.items():
            print(f"{name:16s} {table.title} ({len(table.rows)} rows)")
        return 0
    if args.replicates < 1:
        raise WsssError(f"--replicates must be 1 or more, got {args.replicates}")
    if args.jobs < 1:
        raise WsssError(f"--jobs must be 1 or more, got {args.jobs}")
    print(run_table(args.table, Path(args.project), tool_env(), replicates=args.replicates, jobs=args.jobs))
    return 0


def cmd_report(args) -> int:
    from wsss.core import params as params_mod
    from wsss.evaluation.report import run_report

    project = Path(args.project)
    params = params_mod.load(project / params_mod.PARAMS_FILE)
    print(run_report(params.tracking.experiment, project, args.runs, args.pipelines_only))
    return 0


def cmd_gallery(args) -> int:
    """The stage gallery's page (wsss.stages.gallery) with the command's choices, at --out;
    nothing is logged to MLflow (the stage logs its grid)."""
    from wsss.core import params as params_mod
    from wsss.core.dvcfile import pipeline
    from wsss.stages.gallery import GallerySettings, write_page

    os.chdir(args.project)  # the stages' paths are relative to the project
    params = params_mod.load()
    chosen = {g: getattr(args, g) for g in ("worst", "best", "sample") if getattr(args, g) is not None}
    if any(n < 0 for n in chosen.values()):
        raise WsssError(f"--worst, --best and --sample must not be negative, got {chosen}")
    settings = GallerySettings(params.project, params.dataset, params.seeds, params.refine, params.segment,
                               pipeline().paths)
    out = args.out or f"{settings.paths.gallery}/index.html"
    write_page(settings, out, args.ids, params.tracking.gallery.model_copy(update=chosen))
    return 0


# Sweep engines: name -> "module:function" called as function(spec, project, jobs=N, **options);
# imported only when chosen (Optuna and Ray cost seconds to import).
SWEEP_ENGINES = {
    "optuna": "wsss.sweep.optuna_engine:run_sweep",
    "ray": "wsss.sweep.ray_engine:run_sweep",
}
RAY_OPTIONS = ("address", "cpus_per_trial", "gpus_per_trial", "max_failures", "ray_cpus")


def cmd_sweep(args) -> int:
    from wsss.core import params as params_mod
    from wsss.sweep.space import load_spec

    if args.engine not in SWEEP_ENGINES:
        raise WsssError(f"unknown sweep engine {args.engine!r}; known: {', '.join(SWEEP_ENGINES)}")
    if args.jobs < 1:
        raise WsssError(f"--jobs must be at least 1, got {args.jobs}")
    if args.confirm not in (0, None) and args.confirm < 2:
        raise WsssError(f"--confirm needs 2 or more seeds for an interval, got {args.confirm}")
    given = [name for name in RAY_OPTIONS if getattr(args, name) is not None]
    if args.engine != "ray" and given:
        raise WsssError(f"--{given[0].replace('_', '-')} is an option of --engine ray")
    options = {name: getattr(args, name) for name in given}
    if args.register:
        options["register"] = True
    project = Path(args.project)
    spec = load_spec(args.spec, project, name=args.name, budget=args.trials)
    module, function = SWEEP_ENGINES[args.engine].split(":")
    run_sweep = getattr(importlib.import_module(module), function)
    print(run_sweep(spec, project, jobs=args.jobs, **options))
    print()
    if args.confirm:
        from wsss.sweep.confirm import confirm_best

        print(confirm_best(spec, project, tool_env(), args.confirm, jobs=args.jobs))
    else:
        print("the best trial is one noisy run: `--confirm 3` compares it with params.yaml over 3 seeds, paired")
    print()
    from wsss.tracking import runs as tracking

    experiment = params_mod.load(project / params_mod.PARAMS_FILE).tracking.experiment
    _print_mlflow_hint(experiment, tracking.configure(experiment, project),
                       f"run 'sweep {spec.name}', its trials nested under it")
    return 0


def _model_named(model: str | None, project: Path) -> str:
    """--model, or the registered model's latest version when it is not given."""
    from wsss.core import params as params_mod

    if model is not None:
        return model
    name = params_mod.load(project / params_mod.PARAMS_FILE).tracking.registered_model
    if not name:
        raise WsssError("no --model given and tracking.registered_model is null: name a model "
                        "(models:/NAME/VERSION, a run id or a checkpoint file)")
    return f"models:/{name}/latest"


def cmd_serve(args) -> int:
    from wsss.serve.predict import load_segmenter
    from wsss.serve.server import Limits, serve

    project = Path(args.project)
    model = _model_named(args.model, project)
    for option, value in (("--max-request-mb", args.max_request_mb), ("--max-pixels", args.max_pixels)):
        if value <= 0:
            raise WsssError(f"{option} must be positive, got {value}")
    limits = Limits(int(args.max_request_mb * 2**20), args.max_pixels, args.max_side)
    segmenter = load_segmenter(model, project, args.device)
    print(f"serve: {model} on {segmenter.device} at http://{args.host}:{args.port}/invocations; requests up to "
          f"{limits.max_request_bytes} bytes and {limits.max_pixels} pixels, segmented at most {limits.max_side} "
          "pixels on a side", flush=True)
    serve(segmenter, args.host, args.port, limits, model)
    return 0


def cmd_predict(args) -> int:
    from tqdm import tqdm

    from wsss.core.progress import progress_enabled
    from wsss.serve.predict import image_files, inference_settings, load_segmenter, predict_files

    project = Path(args.project)
    model = _model_named(args.model, project)
    files = image_files(args.images)
    segmenter = load_segmenter(model, project, args.device)
    settings = inference_settings(segmenter, args.scales, args.hflip, args.crf, prefix="--")
    print(f"predict: {model} on {segmenter.device}, scales {list(settings.scales)}, flip {settings.hflip}, "
          f"CRF {settings.crf}; {len(files)} image(s) -> {args.out}")
    bar = tqdm(total=len(files), desc="predict", disable=not progress_enabled("auto"))
    report = predict_files(segmenter, files, Path(args.out), settings, args.overlay, bar, args.max_side)
    bar.close()
    print(f"predict: wrote {len(report.written)} label map(s) to {args.out}"
          + (f"; {len(report.failed)} image(s) failed (above)" if report.failed else ""))
    return 1 if report.failed else 0


def _max_side(text: str) -> int:
    """--max-side of predict and serve: 0 (no bound) or a positive number of pixels."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no bound) or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from wsss.serve.large_images import MAX_SIDE
    from wsss.serve.server import Limits

    parser = argparse.ArgumentParser(prog="wsss", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", default=".", help="project directory (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)
    repro = sub.add_parser("repro", help="run the pipeline and print the results table")
    repro.add_argument("--replicates", type=int, default=None, metavar="N",
                       help="run it for project.seed = 0..N-1 (DVC experiments) and print each figure's mean "
                            "and 95%% interval over the seeds (docs/statistics.md)")
    repro.add_argument("--jobs", type=int, default=1, metavar="J",
                       help="with --replicates: run J replicates at a time from DVC's queue (dvc queue start -j J; "
                            "on CPU they share the cores)")
    repro.add_argument("dvc_args", nargs=argparse.REMAINDER, help="passed on to dvc repro")
    repro.set_defaults(func=cmd_repro)
    sub.add_parser("results", help="print the results table").set_defaults(func=cmd_results)
    init = sub.add_parser("init", help="write a preset's values (presets/NAME.yaml) into params.yaml: the papers' "
                          "VOC / COCO settings, a small real set, the synthetic default (docs/presets.md)")
    init.add_argument("--preset", default=None, help="the preset's name (see --list)")
    init.add_argument("--list", action="store_true", help="list the presets")
    init.set_defaults(func=cmd_init)
    sub.add_parser("check-params", help="validate params.yaml").set_defaults(func=cmd_check_params)
    sub.add_parser("verify", help="check this run's figures against the committed replicate study's intervals "
                   "(metrics/replicates.json)").set_defaults(func=cmd_verify)
    params_cmd = sub.add_parser("params", help="params.yaml's model").add_subparsers(dest="action", required=True)
    schema = params_cmd.add_parser("schema", help="write params.yaml's JSON Schema (default params.schema.json)")
    schema.add_argument("--out", default=None, help="the file, relative to --project (default params.schema.json)")
    schema.set_defaults(func=cmd_params_schema)
    predict = sub.add_parser("predict", help="segment images with a trained network (MLflow model or checkpoint)")
    predict.add_argument("images", nargs="+", help="image files, or folders of images")
    predict.add_argument("--model", default=None, help="models:/NAME/VERSION (or latest), runs:/RUN_ID/model, a "
                         "run id, or a checkpoint file (default: models:/<tracking.registered_model>/latest)")
    predict.add_argument("--out", default="predictions", help="output folder (default: predictions)")
    predict.add_argument("--overlay", action="store_true", help="also write <stem>_overlay.png: the image with the labels")
    predict.add_argument("--scales", type=float, nargs="+", default=None,
                         help="multi-scale inference, e.g. --scales 0.5 1 1.5 (default: the model's segment.infer)")
    predict.add_argument("--hflip", action=argparse.BooleanOptionalAction, default=None,
                         help="average with the mirrored image (default: the model's)")
    predict.add_argument("--crf", action=argparse.BooleanOptionalAction, default=None,
                         help="dense CRF on the prediction (default: the model's)")
    predict.add_argument("--max-side", type=_max_side, default=MAX_SIDE, help="segment a larger image at this many pixels "
                         f"on its longer side, bounding memory (0: no bound; default {MAX_SIDE})")
    predict.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda | cuda:N")
    predict.set_defaults(func=cmd_predict)
    ui = sub.add_parser("ui", help="the MLflow UI over this project's runs, sized for a laptop (1 worker)")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    ui.set_defaults(func=cmd_ui)
    serve = sub.add_parser("serve", help="serve a trained network over HTTP (MLflow's scoring protocol), with limits")
    serve.add_argument("--model", default=None, help="as for predict (default: models:/<tracking.registered_model>/latest)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=5001, help="port (default 5001)")
    serve.add_argument("--max-request-mb", type=float, default=Limits.max_request_bytes / 2**20,
                       help="refuse (413) a larger request body (default %(default)g)")
    serve.add_argument("--max-pixels", type=int, default=Limits.max_pixels,
                       help="refuse (413) an image of more pixels (default %(default)d)")
    serve.add_argument("--max-side", type=_max_side, default=MAX_SIDE, help="segment a larger image at this many pixels on "
                       f"its longer side, bounding memory (0: no bound; default {MAX_SIDE})")
    serve.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda | cuda:N")
    serve.set_defaults(func=cmd_serve)
    ablate = sub.add_parser("ablate", help="run an ablation table (dvc experiments, MLflow runs, markdown)")
    ablate.add_argument("table", nargs="?", help="table name (see --list)")
    ablate.add_argument("--list", action="store_true", help="list the tables")
    ablate.add_argument("--replicates", type=int, default=1, metavar="N",
                        help="run each row for project.seed = 0..N-1: mean ± 95%% interval, and each row's "
                             "difference to the first paired by seed (default 1)")
    ablate.add_argument("--jobs", type=int, default=1, metavar="J",
                        help="with --replicates: run J of a row's seeds at a time from DVC's queue (default 1)")
    ablate.set_defaults(func=cmd_ablate)
    report = sub.add_parser("report", help="methods side by side from MLflow (markdown; plot logged to MLflow)")
    report.add_argument("--runs", type=int, default=200, help="newest runs of each evaluate stage to consider (default 200)")
    report.add_argument("--pipelines-only", action="store_true",
                        help="only plain pipeline runs (wsss repro / dvc repro): no DVC experiment, ablation row or sweep trial")
    report.set_defaults(func=cmd_report)
    page = sub.add_parser("gallery", help="HTML page of chosen images beside every stage's masks, with IoUs")
    page.add_argument("--out", default=None, help="the HTML file, relative to --project (default: the stage "
                      "gallery's page, results/gallery/index.html)")
    page.add_argument("--ids", nargs="+", default=None, help="these image ids of dataset.eval_split instead of the "
                      "worst / best / sample")
    for group, what in (("worst", "images of lowest per-image IoU"), ("best", "images of highest per-image IoU"),
                        ("sample", "images sampled with project.seed")):
        page.add_argument(f"--{group}", type=int, default=None, help=f"{what} (default tracking.gallery.{group})")
    page.set_defaults(func=cmd_gallery)
    sweep = sub.add_parser("sweep", help="search params.yaml keys (a sweep spec file), one cached dvc repro per trial")
    sweep.add_argument("spec", help="sweep spec file, e.g. sweeps/ptrecl.yaml")
    sweep.add_argument("--engine", default="optuna", help=f"search engine: {', '.join(SWEEP_ENGINES)} (default optuna)")
    sweep.add_argument("--trials", type=int, default=None, help="finished trials wanted (overrides the spec's budget)")
    sweep.add_argument("--name", default=None, help="sweep name: its state dir and study (default: the spec file's stem)")
    sweep.add_argument("--jobs", type=int, default=1, help="trials (and --confirm's seeds) run at the same time "
                       "(default 1); optuna's share this machine's devices as params.yaml says (GPUs per trial: "
                       "--engine ray)")
    sweep.add_argument("--confirm", type=int, default=0, metavar="N",
                       help="then re-run the best trial's params and params.yaml for project.seed 0..N-1 and "
                            "call the best better only if the paired 95%% interval says so (default: off)")
    sweep.add_argument("--register", action="store_true", help="register the best trial's segmentation network "
                       "in the Model Registry (trials register none); trains it if the objective lies upstream")
    ray = sweep.add_argument_group("--engine ray")
    ray.add_argument("--address", default=None, help="an existing Ray cluster (HOST:PORT or auto); default: "
                     "a local Ray on 127.0.0.1")
    ray.add_argument("--cpus-per-trial", type=float, default=None, help="CPUs each trial reserves (default 1)")
    ray.add_argument("--gpus-per-trial", type=float, default=None, help="GPUs each trial reserves: N whole GPUs "
                     "(its stages run N processes, DDP), a fraction below 1 (trials share a GPU) or 0, "
                     "GPUs hidden (default 0)")
    ray.add_argument("--max-failures", type=int, default=None, help="retries of a failed trial (default 1)")
    ray.add_argument("--ray-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    sweep.set_defaults(func=cmd_sweep)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    # dvc's own options (`wsss repro --force`) are not ours: pass them through unparsed.
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "repro":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "repro":
        args.dvc_args = unknown + args.dvc_args
    return args


def main(argv: list[str] | None = None) -> int:
    from wsss.core.processes import DRIVER_ENV, owner_id

    args = parse_args(argv)
    os.environ[DRIVER_ENV] = owner_id()  # what this command starts stops when it dies (watch_driver)
    try:
        return args.func(args)
    except WsssError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        account = disk_full(exc, args.project)
        if account is None:
            raise
        print(f"error: {account}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
