"""The command-line tools wsss drives, as it runs them (``dvc_command``: `dvc`)."""
