"""System metrics on every stage run: MLflow's own monitor (`system/cpu_utilization_percentage`,
`system/system_memory_usage_megabytes`, disk and network; `system/gpu_*` per GPU where NVML finds
one), as `mlflow.start_run(log_system_metrics=True)` logs them, for the client-made runs of the
stages.

It samples every `MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL` seconds (default SAMPLING_S) and logs
the mean of the samples; a stage shorter than one interval still gets one point, the mean of
what was sampled, at its end. `MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=false` turns it off.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

SAMPLING_S = 10.0
OFF_ENV = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"


def enabled() -> bool:
    return os.environ.get(OFF_ENV, "true").strip().lower() not in ("false", "0", "no")


@contextlib.contextmanager
def system_metrics(run_id: str) -> Iterator[None]:
    """Sample the machine while the block runs and log it to run `run_id` (RUNNING until after)."""
    if not enabled():
        yield
        return
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # no start/stop lines in stage logs
    monitor = SystemMetricsMonitor(run_id, sampling_interval=SAMPLING_S)
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()
        if monitor._logging_step == 0:  # ended inside the first interval: log what it sampled
            with contextlib.suppress(Exception):
                monitor.collect_metrics()
                monitor.publish_metrics(monitor.aggregate_metrics())
                monitor.mlflow_logger.flush()
