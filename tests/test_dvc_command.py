"""`dvc` as wsss runs it (wsss.tools.dvc_command): a cache object another process just added
survives this process's attempt to put the same object into the cache."""

import os
import shutil
import subprocess

import pytest
from dvc_objects.fs import system
from dvc_objects.fs.local import LocalFileSystem

from wsss.tools import dvc_command
from wsss.tools.dvc_command import BIN, install, tool_env


def _object_linked_into_a_workspace(tmp_path):
    """A cache object, hardlinked into a workspace, and the same content about to be committed."""
    content = b"one image's score map" * 100
    cache_object = tmp_path / "cache" / "ab" / "cdef"
    cache_object.parent.mkdir(parents=True)
    cache_object.write_bytes(content)
    workspace_file = tmp_path / "workspace.npz"
    os.link(cache_object, workspace_file)
    committed = tmp_path / "other-slot.npz"
    committed.write_bytes(content)
    return content, cache_object, workspace_file, committed


def _reflink_supported(tmp_path) -> bool:
    source = tmp_path / "probe"
    source.write_bytes(b"x")
    try:
        system.reflink(str(source), str(tmp_path / "probe-clone"))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not hasattr(os, "link"), reason="needs hardlinks")
def test_committing_an_object_the_cache_already_holds_leaves_it_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(system, "reflink", system.reflink)  # restored after the test
    if _reflink_supported(tmp_path):
        pytest.skip("this file system clones: dvc-objects' reflink does not truncate here")
    content, cache_object, workspace_file, committed = _object_linked_into_a_workspace(tmp_path)

    # dvc-objects as released: the reflink's O_TRUNC empties the object, and its clean-up unlinks it
    with pytest.raises(OSError):
        LocalFileSystem().reflink(str(committed), str(cache_object))
    assert workspace_file.read_bytes() == b"" and not cache_object.exists()

    content, cache_object, workspace_file, committed = _object_linked_into_a_workspace(tmp_path / "fixed")
    install()
    with pytest.raises(OSError):  # still no reflink here: DVC goes on to its next link type
        LocalFileSystem().reflink(str(committed), str(cache_object))
    assert cache_object.read_bytes() == content and workspace_file.read_bytes() == content
    assert sorted(p.name for p in cache_object.parent.iterdir()) == ["cdef"]  # no temporary left behind


def test_a_clone_replaces_its_destination_whole(tmp_path):
    """Where clones work, the clone lands under a temporary name and is renamed into place."""
    destination = tmp_path / "object"
    destination.write_bytes(b"same")
    seen = []

    def clone(src, dst):
        seen.append(dst)
        shutil.copyfile(src, dst)

    source = tmp_path / "source"
    source.write_bytes(b"same")
    dvc_command.reflink_via_temp(str(source), str(destination), clone)
    assert seen[0] != str(destination) and destination.read_bytes() == b"same"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["object", "source"]


def test_the_dvc_wsss_starts_is_the_safe_one():
    env = tool_env()
    assert shutil.which("dvc", path=env["PATH"]) == str(BIN / "dvc")
    done = subprocess.run(["dvc", "--version"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip()[0].isdigit(), done.stderr
