"""Hyper-parameter sweeps over params.yaml keys, each trial a `dvc repro` that reuses cached stages.

- ``space``: the sweep spec file (search space, objective, budget), validated up front;
- ``workspace``: trial slots and ``run_trial``, the engine-agnostic trial runner;
- ``tracking``: the sweep's parent MLflow run and one nested run per trial;
- ``optuna_engine``: TPE, a resumable sqlite study, median pruning.
"""
