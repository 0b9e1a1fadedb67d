"""`wsss report`: methods side by side from the evaluation runs of a real MLflow database."""

import mlflow

from wsss.core.params import validate
from wsss.evaluation.report import Evaluation, report_rows, run_report
from wsss.tracking.runs import stage_run


def _evaluation(stage, method, miou, t, **extra):
    return Evaluation(stage, method, {"miou": miou, "boundary.f1": 0.1 * t, **extra}, t, f"run{t}")


def test_rows_put_each_chain_beside_its_seeds_and_its_segmentation():
    rows = report_rows([
        _evaluation("seeds", "cam", 0.40, 1),
        _evaluation("refine", "cam+irn", 0.45, 2, **{"cooccurrence.pairs_mean": 0.8}),
        _evaluation("ptrecl", "cam+irn+ptrecl", 0.50, 3, **{"map.miou": 0.47}),
        _evaluation("segment", "cam+irn+ptrecl+deeplabv2", 0.52, 4),
        _evaluation("segment", "cam+irn+ptrecl+deeplabv3", 0.55, 6),  # newest network on those masks
        _evaluation("seeds", "cam", 0.42, 5),  # a newer CAM evaluation replaces the older one
        _evaluation("seeds", "eps", 0.53, 7),
    ])
    by_method = {r["method"]: r for r in rows}
    assert [r["method"] for r in rows] == ["cam", "eps", "cam+irn", "cam+irn+ptrecl"]
    assert by_method["cam"]["seeds mIoU"] == 0.42 and by_method["cam"]["pseudo-mask mIoU"] is None
    irn, ptrecl = by_method["cam+irn"], by_method["cam+irn+ptrecl"]
    assert irn["seeds mIoU"] == 0.42 and irn["pseudo-mask mIoU"] == 0.45 and irn["co-occurrence"] == 0.8
    assert irn["segmentation val mIoU"] is None and irn["reclass. map mIoU"] is None
    assert ptrecl["pseudo-mask mIoU"] == 0.50 and ptrecl["reclass. map mIoU"] == 0.47
    assert ptrecl["segmentation val mIoU"] == 0.55 and ptrecl["run"] == "run3"
    assert by_method["eps"]["seeds mIoU"] == 0.53


def test_report_reads_stage_runs_and_logs_its_table_and_plot(tmp_path, mlflow_db, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = validate({})
    for stage, method, metrics in [
        ("evaluate_seeds", "cam", {"miou": 0.41, "boundary": {"f1": 0.15}}),
        ("evaluate_refine", "cam+irn", {"miou": 0.45, "boundary": {"f1": 0.41}, "cooccurrence": {"pairs_mean": 0.79}}),
        ("evaluate_ptrecl", "cam+irn+ptrecl", {"miou": 0.49, "map": {"miou": 0.47}}),
        ("evaluate_segmentation", "cam+irn+ptrecl+deeplabv2", {"miou": 0.51}),
        ("train_irn", None, {"train.loss": 0.3}),  # not an evaluation: ignored
    ]:
        with stage_run(stage, params, ["evaluate"], tmp_path) as run:
            if method:
                run.set_tag("wsss.method", method)
            if stage == "evaluate_segmentation":
                run.set_tag("wsss.registered_model", "wsss-segmenter/3")
            run.log_metrics(metrics)
    table = run_report("wsss", tmp_path)
    lines = table.splitlines()
    assert lines[0].startswith("| method") and len(lines) == 2 + 3
    irn = next(line for line in lines if line.startswith("| cam+irn "))
    assert "0.4100" in irn and "0.4500" in irn and "0.7900" in irn
    ptrecl = next(line for line in lines if line.startswith("| cam+irn+ptrecl "))
    assert "0.4900" in ptrecl and "0.4700" in ptrecl and "0.5100" in ptrecl
    assert "| wsss-segmenter/3 " in ptrecl and "wsss-segmenter" not in irn  # the network beside its row
    client = mlflow.MlflowClient(tracking_uri=mlflow_db)
    experiment = client.get_experiment_by_name("wsss")
    reports = client.search_runs([experiment.experiment_id], filter_string="tags.`wsss.kind` = 'report'")
    assert len(reports) == 1 and reports[0].info.status == "FINISHED"
    artifacts = {a.path: a for a in client.list_artifacts(reports[0].info.run_id)}
    assert set(artifacts) == {"report.md", "report.png"} and artifacts["report.png"].file_size > 1000


def test_report_without_evaluations_says_so(tmp_path, mlflow_db, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "no evaluation runs" in run_report("wsss", tmp_path)


def test_pipelines_only_leaves_out_experiment_rows(tmp_path, mlflow_db, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = validate({})
    for experiment, miou in [("", 0.45), ("ptrecl-k-K_2", 0.30)]:  # a plain run, then an ablation row
        monkeypatch.setenv("DVC_EXP_NAME", experiment)
        with stage_run("evaluate_refine", params, ["evaluate"], tmp_path) as run:
            run.set_tag("wsss.method", "cam+irn")
            run.log_metrics({"miou": miou})
    newest = next(line for line in run_report("wsss", tmp_path).splitlines() if line.startswith("| cam+irn "))
    assert "0.3000" in newest and "ptrecl-k-K_2" in newest
    plain = next(line for line in run_report("wsss", tmp_path, pipelines_only=True).splitlines()
                 if line.startswith("| cam+irn "))
    assert "0.4500" in plain and "ptrecl-k-K_2" not in plain


def test_a_replicate_study_shows_each_figure_over_its_seeds():
    from wsss.evaluation.statistics import over_seeds

    def replicate(stage, method, miou, t, seed):
        return Evaluation(stage, method, {"miou": miou}, t, f"replicate-seed-{seed}", False, None, "group1",
                          f"child{seed}")

    cams, irns = [0.3957, 0.4239, 0.4814], [0.4331, 0.4560, 0.5427]
    rows = report_rows([_evaluation("seeds", "cam", 0.30, 0)]
                       + [replicate("seeds", "cam", v, 1 + k, k) for k, v in enumerate(cams)]
                       + [replicate("refine", "cam+irn", v, 5 + k, k) for k, v in enumerate(irns)]
                       + [_evaluation("seeds", "eps", 0.5, 9)])
    by_method = {r["method"]: r for r in rows}
    assert by_method["cam"]["seeds mIoU"] == over_seeds(cams) and by_method["cam"]["runs"] == "3 seeds"
    assert by_method["cam+irn"]["pseudo-mask mIoU"] == over_seeds(irns)
    assert by_method["cam+irn"]["seeds mIoU"].format() == over_seeds(cams).format()
    assert by_method["eps"]["seeds mIoU"] == 0.5 and by_method["eps"]["runs"] == "single run"
