"""Guard rails on an evaluation: a figure below a trivial baseline, a refinement below its input.

Masks that score below "every pixel background" or "every pixel the image's labelled class" say
nothing about where objects are; a refinement that lowers the mIoU of the masks it refines does
harm. Both happen on real photos with settings that do not suit them, while every stage reports
success. `flag` names them in the result (the metrics file's ``flags``, which the results table
shows, and the stage run's MLflow tag ``wsss.flags``) and prints them as warnings.
"""

from __future__ import annotations

import sys

BELOW_BASELINE = "below_baseline"
LOWERS_INPUT = "lowers_input"


def quality_flags(result: dict) -> dict[str, str]:
    """{flag: why} of one evaluation result (with its ``baselines`` and ``vs_input`` where it has them)."""
    flags = {}
    baselines = {name: values["miou"] for name, values in (result.get("baselines") or {}).items()
                 if values.get("miou") is not None}
    if baselines and result.get("miou") is not None:
        name, best = max(baselines.items(), key=lambda item: item[1])
        if result["miou"] < best:
            flags[BELOW_BASELINE] = (f"mIoU {result['miou']:.4f} is below the trivial baseline "
                                     f"'{name.replace('_', ' ')}' ({best:.4f}) on the same images")
    versus = result.get("vs_input")
    if versus and versus.get("difference") is not None and versus["difference"] < 0:
        noise = "its 95% interval excludes zero" if versus["resolved"] else "within the images' noise"
        flags[LOWERS_INPUT] = (f"mIoU {versus['difference']:+.4f} against its input ({versus['reference']}) "
                               f"on the same images, {noise}")
    return flags


def flag(result: dict, stage: str) -> dict:
    """Put the result's flags into it (``flags``: {flag: why}) and print each as a warning."""
    result["flags"] = quality_flags(result)
    for why in result["flags"].values():
        print(f"{stage}: WARNING: {result['stage']} {result['method']}: {why}", file=sys.stderr)
    return result
