"""Failure cases end in a clear error naming the culprit and leave nothing behind: a truncated
checkpoint, a stage killed mid-write (temporary outputs, MLflow runs left RUNNING), bad params
before DVC removes outputs, `dataset.max_images`, a stopped `wsss repro`. Real processes, a real
sqlite MLflow database."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pytest
import torch
import yaml

from wsss import cli
from wsss.core import params as params_mod
from wsss.core.errors import DataError, ParamsError
from wsss.core.io import atomic_path, load_checkpoint, save_state_dict
from wsss.core.params import SyntheticParams
from wsss.core.processes import owner_gone, owner_id
from wsss.data.registry import open_split
from wsss.data.synthetic import generate
from wsss.stages.preflight import check_all
from wsss.tracking import runs as tracking

from tests.helpers.processes import processes_in
from tests.helpers.project import make_project, run, stages_run

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}")


def _spawn(code: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """A Python child running ``code``; it prints "ready" once it is where the test wants it."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env or ENV,
                            stdout=subprocess.PIPE, text=True)


def _wait_ready(child: subprocess.Popen) -> str:
    line = child.stdout.readline()
    assert line.startswith("ready"), f"child failed before it was ready (exit {child.wait()})"
    return line.split()[1] if len(line.split()) > 1 else ""


def _sigkill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait()


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp*"))


# -- 1. one checkpoint loader -----------------------------------------------------------------
def _tiny_project(tmp_path: Path) -> Path:
    """A project folder with dvc.yaml, a 4-image synthetic set and params pointing at it."""
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    generate(tmp_path / "data", SyntheticParams(image_height=32, image_width=40, num_train=4, num_val=2))
    params = {"dataset": {"root": "data"}, "project": {"progress": False, "device": "cpu"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def _truncated_classifier(project: Path) -> None:
    checkpoint = project / "artifacts/seeds/classifier.pt"
    save_state_dict(checkpoint, {"w": torch.arange(5000.0)})
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])


def test_truncated_checkpoint_names_the_file_and_its_stage(tmp_path, monkeypatch):
    from wsss.core.dvcfile import pipeline
    from wsss.stages.seeds import trained_classifier

    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    _truncated_classifier(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"^artifacts/seeds/classifier\.pt: cannot read checkpoint, truncated .*"
                                        r"; re-run the stage that writes it: dvc repro --force --single-item "
                                        r"train_classifier$"):
        trained_classifier(params_mod.validate({}).seeds, pipeline().paths, 8, torch.device("cpu"))


@pytest.mark.slow
def test_seeds_stage_on_a_truncated_checkpoint_exits_with_the_message(tmp_path):
    project = _tiny_project(tmp_path)
    _truncated_classifier(project)
    done = subprocess.run([sys.executable, "-m", "pipeline.seeds"], cwd=project, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: artifacts/seeds/classifier.pt: cannot read checkpoint")
    assert "re-run the stage that writes it: dvc repro --force --single-item train_classifier" in done.stderr
    assert not (project / "artifacts/seeds/maps").exists() and _temps(project / "artifacts/seeds") == []


def test_load_checkpoint_missing_corrupt_and_not_a_state_dict(tmp_path):
    with pytest.raises(DataError, match=r"nope\.pt: checkpoint not found; re-run"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip archive")
    with pytest.raises(DataError, match=r"junk\.pt: cannot read checkpoint, truncated or corrupt .*; fix it"):
        load_checkpoint(tmp_path / "junk.pt", remedy="fix it")
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(DataError, match=r"list\.pt: expected a state dict, got list"):
        load_checkpoint(tmp_path / "list.pt")


def test_checkpoint_of_another_model_names_the_file(tmp_path, monkeypatch):
    from wsss.core.dvcfile import load_stage_weights, pipeline

    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    weights = pipeline().paths.irn_weights
    save_state_dict(weights, torch.nn.Linear(3, 2).state_dict())
    with pytest.raises(DataError, match=r"artifacts/irn/irn\.pt: checkpoint does not fit .* train_irn"):
        load_stage_weights(torch.nn.Linear(4, 2), weights)


def test_no_stage_calls_torch_load_itself():
    sources = [*ROOT.glob("pipeline/*.py"), *ROOT.glob("scripts/*.py"), *(ROOT / "src").rglob("*.py")]
    callers = [p.relative_to(ROOT).as_posix() for p in sources if "torch.load(" in p.read_text()]
    assert callers == ["src/wsss/core/io.py"]


# -- 2. temporary outputs of killed writers -----------------------------------------------------
WRITER = """
    import sys, time
    from wsss.core.io import atomic_dir
    with atomic_dir("artifacts/seeds/maps") as out:
        for i in range(10):
            (out / f"{i}.npz").write_bytes(b"x")
        print("ready", flush=True)
        time.sleep(600)
"""


def test_temp_output_of_a_killed_writer_is_removed_and_a_live_ones_kept(tmp_path):
    folder = tmp_path / "artifacts/seeds"
    killed = _spawn(WRITER, tmp_path)
    _wait_ready(killed)
    _sigkill(killed)
    [leftover] = _temps(folder)
    assert len(list(leftover.iterdir())) == 10
    live = _spawn(WRITER, tmp_path)  # the next writer removes it as it starts
    try:
        _wait_ready(live)
        [live_temp] = _temps(folder)
        assert live_temp != leftover and not leftover.exists()
        rerun = subprocess.run([sys.executable, "-c", textwrap.dedent("""
            from wsss.core.io import atomic_dir
            with atomic_dir("artifacts/seeds/maps") as out:
                (out / "a.npz").write_bytes(b"y")
        """)], cwd=tmp_path, env=ENV, timeout=120)
        assert rerun.returncode == 0
        assert _temps(folder) == [live_temp]  # a running writer's temp is kept
        assert [p.name for p in (folder / "maps").iterdir()] == ["a.npz"]
    finally:
        _sigkill(live)
    with atomic_path(folder / "classifier.pt") as tmp:  # any later write in the folder sweeps it
        tmp.write_bytes(b"z")
    assert _temps(folder) == []


def test_owner_names_a_process_for_good():
    assert not owner_gone(owner_id())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = owner_id(child.pid)
    child.wait()
    assert owner_gone(owner)
    pid, rest = owner_id().split("-", 1)
    assert owner_gone(f"{pid}-{int(rest.split('@')[0]) - 100}@{rest.split('@')[1]}")  # pid reused later
    assert not owner_gone(f"{pid}-1@another-host") and not owner_gone("not an owner")


# -- 3. MLflow runs of killed processes -----------------------------------------------------------
STAGE = """
    from wsss.core import params
    from wsss.tracking import runs as tracking
    p = params.validate({})
    with tracking.stage_run("seeds", p, ["seeds.infer"], ".") as run:
        print("ready", run.run_id, run.parent_id, flush=True)
        import time; time.sleep(600)
"""


@pytest.mark.slow
def test_runs_of_a_killed_stage_are_closed_by_the_next_one(mlflow_db, tmp_path):
    env = dict(ENV, MLFLOW_TRACKING_URI=mlflow_db)
    env.pop(tracking.PARENT_ENV, None)
    killed = _spawn(STAGE, tmp_path, env)
    killed_stage, killed_parent = _wait_ready(killed), None
    _sigkill(killed)
    live = _spawn(STAGE, tmp_path, env)
    try:
        _wait_ready(live)
        client = mlflow.MlflowClient(tracking_uri=mlflow_db)
        experiment = client.get_experiment_by_name("wsss").experiment_id
        runs = {r.info.run_id: r for r in client.search_runs([experiment])}
        killed_parent = runs[killed_stage].data.tags["mlflow.parentRunId"]
        for run_id in (killed_stage, killed_parent):  # the live stage closed them on its start
            run = client.get_run(run_id)
            assert run.info.status == "KILLED"
            assert "ended without closing it (killed)" in run.data.tags[tracking.ORPHANED_TAG]
        assert [r.info.status for r in runs.values() if r.info.run_id not in (killed_stage, killed_parent)] \
            == ["RUNNING", "RUNNING"]  # the live stage's runs stay open
        assert tracking.close_orphaned_runs(experiment) == []
    finally:
        _sigkill(live)
    assert len(tracking.close_orphaned_runs(experiment)) == 2


# -- 4. params checked fully before DVC runs ----------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    ({"refine.irn.backbone": "pretrained"}, "'refine.irn.backbone' = pretrained needs a pretrained backbone"),
    ({"segment.backbone": "pretrained"}, "'segment.backbone' = pretrained needs a pretrained backbone"),
    ({"seeds.method": "eps", "dataset.saliency": None}, "'seeds.method' = eps trains on saliency maps"),
    ({"seeds.method": "eps", "seeds.eps.predefined_background": ["sky"]}, "names 'sky', which is not a class"),
    ({"dataset.saliency": "opencv:nope"}, "unknown OpenCV method 'nope'"),
    ({"dataset.label_dir": "labels"}, "'dataset.label_dir' applies to coco only"),
    ({"seeds.backbone.checkpoint": "missing.pt"}, "'seeds.backbone.checkpoint' file not found"),
    ({"seeds.backbone.name": "efficientnet_lite0", "seeds.backbone.output_stride": 8}, "supports 16 or 32"),
])
def test_check_all_makes_the_checks_the_stages_make(tmp_path, overrides, message):
    """Loading params.yaml (the model's checks) and check_all (what needs files and the machine)
    between them make every check a stage would make."""
    (tmp_path / "params.yaml").write_text("{}\n")
    with pytest.raises(ParamsError, match=message):
        check_all(params_mod.load(tmp_path / "params.yaml", overrides), tmp_path)


def test_check_all_opens_every_split_of_an_existing_data_set(tmp_path):
    project = _tiny_project(tmp_path)
    check_all(params_mod.load(project / "params.yaml"), project)
    params = params_mod.load(project / "params.yaml", {"dataset.val_split": "vall"})
    with pytest.raises(DataError, match=r"split file for split 'vall' not found"):
        check_all(params, project)


def test_repro_refuses_bad_params_before_dvc_touches_anything(tmp_path, mlflow_db, capsys):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"refine": {"irn": {"backbone": "pretrained"}}}))
    assert cli.main(["--project", str(tmp_path), "repro"]) == 2
    assert "error: params.yaml: 'refine.irn.backbone' = pretrained" in capsys.readouterr().err
    assert mlflow.MlflowClient(tracking_uri=mlflow_db).get_experiment_by_name("wsss") is None  # no run
    assert cli.main(["--project", str(tmp_path), "check-params"]) == 2


# -- 5. dataset.max_images ---------------------------------------------------------------------
def test_max_images_checks_the_images_used_and_says_so(tmp_path, capsys):
    root = tmp_path / "data"
    generate(root, SyntheticParams(image_height=32, image_width=40, num_train=5, num_val=1))
    bad = (root / "ImageSets/Segmentation/train.txt").read_text().split()[-1]
    (root / "JPEGImages" / f"{bad}.jpg").write_bytes(b"broken")
    cfg = params_mod.validate({"dataset": {"root": str(root), "max_images": 3}}).dataset
    dataset = open_split(cfg, "train")
    dataset.validate()  # the broken image is not among the first 3
    assert len(dataset.ids) == 3
    assert "using the first 3 of 5 images (dataset.max_images); the other 2 are neither used nor checked" \
        in capsys.readouterr().out
    with pytest.raises(DataError, match=f"image {bad}: .*{bad}.jpg: cannot decode image"):
        open_split(cfg.model_copy(update={"max_images": None}), "train").validate()
    assert "using the first" not in capsys.readouterr().out


# -- 6. a stopped `wsss repro` stops its stages -------------------------------------------------
@pytest.mark.slow
def test_sigterm_to_wsss_repro_ends_every_stage(tiny_project):
    cwd, env = tiny_project
    repro = subprocess.Popen(["wsss", "repro"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)

    def stages():
        return processes_in(cwd, "pipeline.")

    client = mlflow.MlflowClient(tracking_uri=tiny_project.uri)

    def training() -> bool:  # train_classifier is inside its MLflow run
        experiment = client.get_experiment_by_name("wsss")
        return experiment is not None and bool(client.search_runs(
            [experiment.experiment_id], "attributes.run_name = 'train_classifier'"))

    deadline = time.monotonic() + 600
    while not training():
        assert repro.poll() is None and time.monotonic() < deadline, repro.communicate()
        time.sleep(0.5)
    assert any("pipeline.train_classifier" in p.info["cmdline"] for p in stages())
    repro.send_signal(signal.SIGTERM)
    out, err = repro.communicate(timeout=120)
    assert repro.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM: stopped the pipeline" in err
    assert stages() == []  # nothing re-parented keeps running
    assert _temps(cwd / "artifacts/seeds") == [] and not (cwd / "artifacts/seeds/classifier.pt").exists()
    runs = client.search_runs([client.get_experiment_by_name("wsss").experiment_id])
    status = {r.info.run_name if r.data.tags.get("wsss.kind") == "stage" else "parent": r.info.status for r in runs}
    assert status == {"synthesize": "FINISHED", "train_classifier": "KILLED", "parent": "KILLED"}
    parent = next(r for r in runs if r.data.tags.get("wsss.kind") == "pipeline")
    assert parent.data.tags["wsss.stopped"].startswith("wsss repro received SIGTERM")


# -- 7. a dead driver stops its stages; honest run status; a full disk in one sentence ----------
STAGE_UNDER_DRIVER = """
    import sys
    from wsss.core import params
    from wsss.stages.common import run_main
    from wsss.tracking import runs as tracking

    def stage():
        with tracking.stage_run("seeds", params.validate({}), ["seeds.infer"], ".") as run:
            print("ready", run.run_id, flush=True)
            if sys.argv[1:] == ["finish"]:
                return
            import time; time.sleep(600)

    run_main(stage, "seeds")
"""


def _stage_under(driver: subprocess.Popen, tmp_path: Path, mlflow_db: str, parent: str | None, *args: str):
    env = dict(ENV, MLFLOW_TRACKING_URI=mlflow_db, WSSS_DRIVER=owner_id(driver.pid))
    env.pop(tracking.PARENT_ENV, None)
    if parent:
        env[tracking.PARENT_ENV] = parent
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(STAGE_UNDER_DRIVER), *args], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_stage_stops_when_its_driver_is_killed_and_says_so_in_mlflow(mlflow_db, tmp_path):
    """SIGKILL leaves a driver no chance to stop its children: the stage's watchdog does, and the
    stage's run and its pipeline's run end KILLED with the reason; a stage whose driver is already
    gone does not start."""
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    experiment = tracking.configure("wsss", tmp_path)
    parent = tracking.start_parent_run(experiment, params_mod.validate({}), "test-driver", tmp_path,
                                       owner=owner_id(driver.pid))
    stage = _stage_under(driver, tmp_path, mlflow_db, parent)
    try:
        run_id = stage.stdout.readline().split()[1]
        _sigkill(driver)
        _, err = stage.communicate(timeout=60)
    finally:
        stage.kill()
    assert stage.returncode == 128 + signal.SIGTERM, err
    assert f"its driver, process {owner_id(driver.pid)}, is gone (killed): stopping" in err
    assert "Traceback" not in err
    client = mlflow.MlflowClient(tracking_uri=mlflow_db)
    run, pipeline = client.get_run(run_id), client.get_run(parent)
    assert (run.info.status, pipeline.info.status) == ("KILLED", "KILLED")
    assert "is gone (killed)" in run.data.tags[tracking.STOPPED_TAG]
    assert pipeline.data.tags[tracking.STOPPED_TAG].startswith("seeds stopped: its driver")
    late = _stage_under(driver, tmp_path, mlflow_db, parent)
    out, err = late.communicate(timeout=60)
    assert late.returncode == 3 and "is gone (killed): not starting" in err and "ready" not in out
    assert "ended KILLED: seeds stopped: its driver" in tracking.last_pipeline_unfinished(experiment)


def test_a_finished_stage_leaves_its_drivers_pipeline_run_open(mlflow_db, tmp_path):
    """Under a driver the pipeline run is the driver's to close once every stage has run: a stage
    never marks it FINISHED while others are still to come (the former stages did, so a killed
    driver's pipeline ended FINISHED with stages missing); without a driver the stage closes it."""
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        experiment = tracking.configure("wsss", tmp_path)
        parent = tracking.start_parent_run(experiment, params_mod.validate({}), "test-driver", tmp_path,
                                           owner=owner_id(driver.pid))
        under_driver = _stage_under(driver, tmp_path, mlflow_db, parent, "finish")
        alone = _stage_under(driver, tmp_path, mlflow_db, None, "finish")
        for stage in (under_driver, alone):
            assert stage.wait(timeout=120) == 0, stage.stderr.read()
    finally:
        _sigkill(driver)
    client = mlflow.MlflowClient(tracking_uri=mlflow_db)
    assert client.get_run(parent).info.status == "RUNNING"  # its driver's to close
    own = [r for r in client.search_runs([experiment]) if r.data.tags.get("wsss.kind") == "pipeline"
           and r.info.run_id != parent]
    assert [r.info.status for r in own] == ["FINISHED"]
    assert tracking.close_orphaned_runs(experiment) == [parent]  # its driver is gone now


def test_a_full_disk_ends_a_stage_in_one_sentence_and_a_failed_run(mlflow_db, tmp_path, capsys):
    """ENOSPC as a stage meets it (simulated: raised where the stage writes): one line naming the
    file and what to do, exit status 2, no traceback, the stage's run FAILED; so for a library's
    error that wraps it (torch's "file write failed" from an OSError)."""
    import errno

    from wsss.core.errors import disk_full
    from wsss.stages.common import run_main

    def stage():
        with tracking.stage_run("seeds", params_mod.validate({}), ["seeds.infer"], tmp_path):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "artifacts/seeds/maps/a.npz"))

    with pytest.raises(SystemExit) as exit_:
        run_main(stage, "seeds")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: seeds: no space left on the disk writing ") and "a.npz" in err
    assert "run again; finished stages are cached" in err
    client = mlflow.MlflowClient(tracking_uri=mlflow_db)
    [run] = [r for r in client.search_runs([tracking.configure("wsss", tmp_path)])
             if r.data.tags.get("wsss.kind") == "stage"]
    assert run.info.status == "FAILED"
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as cause:
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed") from cause
    except RuntimeError as wrapped:
        assert disk_full(wrapped).startswith("no space left on the disk")
    assert disk_full(ValueError("a bug")) is None


def _training(client) -> bool:
    experiment = client.get_experiment_by_name("wsss")
    return experiment is not None and bool(client.search_runs(
        [experiment.experiment_id], "attributes.run_name = 'train_classifier'"))


def _stage_statuses(client, experiment_id: str) -> dict[str, str]:
    return {r.info.run_name if r.data.tags.get("wsss.kind") == "stage" else "parent": r.info.status
            for r in client.search_runs([experiment_id], order_by=["attributes.start_time ASC"])}


@pytest.mark.slow
def test_sigkill_to_wsss_repro_stops_its_pipeline_and_the_next_run_says_so(tiny_project, tmp_path):
    """The driver SIGKILLed while train_classifier runs: dvc and the stage end within a minute
    (before: dvc ran the remaining stages unattended and the parent run ended FINISHED with 14 of
    16 stage runs), no later stage starts, the runs end KILLED; the next `wsss repro` says what it
    found and runs cleanly."""
    cwd, env = tiny_project
    client = mlflow.MlflowClient(tracking_uri=tiny_project.uri)
    with open(tmp_path / "repro.log", "w") as log:
        repro = subprocess.Popen(["wsss", "repro"], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        while not _training(client):  # train_classifier is inside its MLflow run
            assert repro.poll() is None and time.monotonic() < deadline, (tmp_path / "repro.log").read_text()
            time.sleep(0.2)
        repro.kill()
        repro.wait()
    deadline = time.monotonic() + 60
    while processes_in(cwd, "pipeline.", "dvc"):
        assert time.monotonic() < deadline, [p.info["cmdline"] for p in processes_in(cwd, "pipeline.", "dvc")]
        time.sleep(0.5)
    experiment_id = client.get_experiment_by_name("wsss").experiment_id
    assert _stage_statuses(client, experiment_id) == {"synthesize": "FINISHED", "train_classifier": "KILLED",
                                                      "parent": "KILLED"}
    assert not (cwd / "artifacts/seeds/classifier.pt").exists() and _temps(cwd / "artifacts/seeds") == []
    rerun = run(["wsss", "repro", "evaluate_seeds"], cwd, env)
    assert "ended KILLED: train_classifier stopped: its driver, process" in rerun.stdout
    assert stages_run(rerun.stdout) == ["train_classifier", "seeds", "evaluate_seeds"]


@pytest.mark.slow
def test_a_full_disk_fails_the_pipeline_in_a_sentence_and_a_rerun_recovers(tmp_path, _mlflow_db_template,
                                                                          _own_store):
    """The project on a small tmpfs filled up (needs root to mount; the simulated ENOSPC test
    above runs everywhere): the stage that meets the full disk says so in one sentence, no
    traceback; its run and the pipeline's end FAILED (before: 200 lines of chained tracebacks and
    both FINISHED); once space is freed the same command finishes and says what it found."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        cwd, own_store_env = make_project(disk / "project", store=_mlflow_db_template)
        store = tmp_path / "mlflow.db"  # beside the full disk: what MLflow records can be checked
        shutil.copy(_mlflow_db_template, store)
        env = dict(own_store_env, MLFLOW_TRACKING_URI=f"sqlite:///{store}")
        run(["dvc", "repro", "synthesize"], cwd, env)
        filler = disk / "filler"
        free = shutil.disk_usage(disk).free
        with open(filler, "wb") as handle:  # leave 64 KiB: DVC's own small files fit, a checkpoint does not
            handle.truncate(0)
            while free - handle.tell() > 64 * 1024:
                handle.write(b"\0" * min(1 << 20, free - handle.tell() - 64 * 1024))
                handle.flush()
        failed = run(["wsss", "repro", "train_classifier"], cwd, env, check=False)
        output = failed.stdout + failed.stderr
        assert failed.returncode != 0
        assert "no space left on the disk" in output and "Traceback" not in output, output
        client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}")
        experiment_id = client.get_experiment_by_name("wsss").experiment_id
        statuses = _stage_statuses(client, experiment_id)
        assert statuses["parent"] == "FAILED" and "FINISHED" not in [statuses.get("train_classifier")], statuses
        # the project's own MLflow store on the full disk: no run can be recorded, and that is said
        failed = run(["wsss", "repro", "train_classifier"], cwd, own_store_env, check=False)
        output = failed.stdout + failed.stderr
        assert failed.returncode != 0
        assert "no space left on the disk" in output and "Traceback" not in output, output
        filler.unlink()
        rerun = run(["wsss", "repro", "train_classifier"], cwd, env)
        assert "ended FAILED" in rerun.stdout and "train_classifier" in stages_run(rerun.stdout)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
