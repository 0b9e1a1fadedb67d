"""Errors that name the culprit: a file, an image id or a params key."""


class WsssError(Exception):
    """Base class for every error this package raises on bad input."""


class DataError(WsssError):
    """A data set file is missing, corrupt or inconsistent (the message names the file/id)."""


class ParamsError(WsssError):
    """params.yaml has an unknown key, a wrong type or an out-of-range value (names the key)."""


class WorkerError(WsssError):
    """A process of a multi-process stage failed (the message names the stage, rank and how)."""


class CollapseError(WsssError):
    """A stage's outputs collapsed (all-zero seed maps, a loss of exactly 0, no boundary anywhere)
    and `project.on_collapse` is fail (the message names the stage and the images)."""


DISK_FULL_TEXTS = ("No space left on device", "database or disk is full", "Disk quota exceeded")
LOW_SPACE_BYTES = 1 << 20  # less free than this on the disk of a failed write: call it full
DISK_FULL_REMEDY = ("free some (`dvc gc`, old experiments, mlruns/) and run again; finished stages are cached "
                    "and will not run twice")


def _free_bytes(folder: str) -> int | None:
    import shutil

    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def low_disk_space(folder: str = ".") -> str | None:
    """A sentence when the disk holding `folder` is (nearly) full, else None."""
    free = _free_bytes(str(folder))
    if free is None or free >= LOW_SPACE_BYTES:
        return None
    return f"the disk holding {folder} is full ({free / 2**20:.1f} MiB free): {DISK_FULL_REMEDY}"


def disk_full(exc: BaseException, folder: str = ".") -> str | None:
    """A one-sentence account when `exc` (or what it was raised from) is a full disk, else None.

    Full disks surface as OSError ENOSPC or EDQUOT, but also as the library errors that wrap them
    (torch's "file write failed", sqlite's "database or disk is full"), so an error while the
    disk has under LOW_SPACE_BYTES free counts too."""
    import errno

    chain, seen = [], exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    full = [e for e in chain if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)]
    named = next((e.filename for e in full if getattr(e, "filename", None)), None)
    free = _free_bytes(folder)
    if not full and not any(text in str(e) for e in chain for text in DISK_FULL_TEXTS) and \
            (free is None or free >= LOW_SPACE_BYTES):
        return None
    where = f" writing {named}" if named else ""
    left = f" ({free / 2**20:.1f} MiB free where it runs)" if free is not None else ""
    return f"no space left on the disk{where}{left}: {DISK_FULL_REMEDY}"
