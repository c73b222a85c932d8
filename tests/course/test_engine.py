"""The grading kernel runner: a failed cell must not leave its memory behind."""

from __future__ import annotations

from advlab.course.engine import KernelRun, Limits
from advlab.course.isolation import Scratch

HOG = """
def hog():
    chunks = [bytearray(10**8) for _ in range(8)]  # 800 MB, a local of the frame that raises
    raise MemoryError("pretend the limit was reached")
hog()
"""
RSS_MB = "int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) // 1024"


def test_a_failed_cells_frames_are_released(tmp_path):
    run = KernelRun(Scratch(tmp_path / "s"), Limits(memory_mb=0, cell_timeout=60,
                                                     submission_timeout=300))
    try:
        assert run.run("import os").status == "ok"
        hog = run.run(HOG)
        assert hog.status == "error" and "MemoryError" in hog.detail
        # IPython keeps the last traceback, and with it `chunks`, unless the runner drops it
        check = run.run(f"rss = {RSS_MB}\nassert rss < 500, f'{{rss}} MB still in use'")
        assert check.status == "ok", check.detail
        assert run.run("print(os.getpid())").status == "ok"  # the same kernel goes on
    finally:
        run.close()
    assert run.survivors == []
