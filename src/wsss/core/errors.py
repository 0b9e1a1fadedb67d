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
