"""What a submission's sandbox sees and keeps, checked with a plain Python process in it.

The same bubblewrap command and launcher as a grading kernel (``advlab.course.isolation``,
``advlab.course.sandbox``), with a short script instead of ``ipykernel``: fast, and exactly the
view a kernel gets. Skipped (with the reason) where the machine gives no namespaces.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import advlab
from advlab.course import isolation, sandbox
from advlab.data import data_root

ISO = isolation.detect()
REPO = Path(advlab.__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(ISO.weak, reason=f"no namespaces here: {ISO.detail}")

PROBE = """
import json, os, socket, subprocess, sys
repo, out, neighbour = sys.argv[1:4]
seen = {
    "uid": os.getuid(),
    "repo": sorted(os.listdir(repo)),
    "solutions": os.path.exists(os.path.join(repo, "solutions")),
    "out_visible": os.path.exists(out),
    "neighbour_visible": os.path.exists(neighbour),
    "tmp": sorted(os.listdir("/tmp")),
    "advlab_readable": os.path.isfile(os.path.join(repo, "advlab", "__init__.py")),
    "home": os.environ.get("HOME"),
    "tmpdir": os.environ.get("TMPDIR"),
}
try:
    open(os.path.join(repo, "advlab", "pwned.py"), "w")
    seen["advlab_writable"] = True
except OSError:
    seen["advlab_writable"] = False
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    seen["network"] = True
except OSError:
    seen["network"] = False
with open(os.path.join(os.environ["HOME"], "probe.json"), "w") as fh:
    json.dump(seen, fh)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(45)", "advlab-probe-daemon"],
                 start_new_session=True)
print("ready", flush=True)
import time; time.sleep(45)
"""


def _daemons() -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                if b"advlab-probe-daemon" in fh.read():
                    found.append(int(name))
        except (OSError, ValueError):
            pass
    return found


def test_the_sandbox_shows_only_what_a_kernel_needs_and_dies_whole(tmp_path):
    scratch = isolation.Scratch(tmp_path / "sub")
    uid = isolation.allocate_uid(ISO)
    scratch.create(uid)
    out, neighbour = tmp_path / "grades", tmp_path / "other-submission"
    out.mkdir()
    neighbour.mkdir()
    data = data_root().expanduser()
    cmd = isolation.bwrap_command(ISO, scratch, data.resolve() if data.is_dir() else None)
    launcher = [sys.executable, "-I", sandbox.__file__, "--memory-mb", "512"]
    if uid is not None:
        launcher += ["--uid", str(uid), "--nproc", "64"]
    token = "probe-token"
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": str(scratch.home),
           "TMPDIR": str(scratch.tmp), isolation.TOKEN_VAR: token}
    proc = subprocess.Popen(
        [*cmd, "--", *launcher, "-c", PROBE, str(REPO), str(out), str(neighbour)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == b"ready", proc.stderr.read().decode()[-2000:]
        seen = json.loads((scratch.home / "probe.json").read_text())
        time.sleep(0.5)
        assert _daemons(), "the probe's daemon should be running now"
        pids = {proc.pid} | isolation.descendants(proc.pid)
        os.killpg(proc.pid, 9)
        left = isolation.kill_everything(pids, uid, token)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert left == [] and _daemons() == []
    if uid is not None:
        assert seen["uid"] == uid and uid != 0
    assert not seen["solutions"] and set(seen["repo"]) <= {"advlab", ".venv", "venv"}
    assert seen["advlab_readable"] and not seen["advlab_writable"]
    assert not seen["out_visible"] and not seen["neighbour_visible"]
    assert seen["tmp"] == [scratch.root.name] if scratch.root.parent == Path("/tmp") else True
    assert seen["home"] == str(scratch.home) and seen["tmpdir"] == str(scratch.tmp)
    assert not seen["network"]
