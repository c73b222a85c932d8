"""Flagging submissions from several threads at once (``advlab grade --jobs N``) is safe.

CPython 3.11 shares one AST-construction depth counter between threads: if another thread
parses while one thread is suspended inside ``ast.parse`` (a garbage collection there runs a
finalizer, which lets other threads run), the suspended parse raises ``SystemError: AST
constructor recursion depth mismatch`` (python/cpython#106905). CI once lost a whole class's
grading to it. The test forces that interleaving: every collection on the main thread runs a
finalizer that hands over to a second thread, which flags a submission of its own.
"""

from __future__ import annotations

import gc
import threading

from advlab.course.provenance import source_flags

from .nbtools import SOLUTIONS, load, source


def test_flagging_while_another_thread_flags_never_raises():
    nb = load(SOLUTIONS / "ex1_fgsm_pgd.ipynb")
    cells = [source(c) for c in nb["cells"] if c["cell_type"] == "code"]
    expected = source_flags(cells, ["pgd_linf"])
    main = threading.get_ident()
    go, done, stop = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []
    handovers = []

    class HandOver:
        """A reference cycle whose finalizer lets the second thread parse, then waits (briefly:
        with the grader's lock the other thread cannot parse until this one is done)."""

        def __init__(self):
            self.me = self

        def __del__(self):
            if threading.get_ident() == main and not stop.is_set():
                HandOver()  # one cycle always waits for the next collection
                handovers.append(1)
                done.clear()
                go.set()
                done.wait(0.005)

    def other():
        while not stop.is_set():
            if go.wait(0.05):
                go.clear()
                try:
                    source_flags(["x = [1, (2, 3)]\n"], [])
                except Exception as e:  # noqa: BLE001 - any failure is the bug
                    errors.append(e)
                done.set()

    second = threading.Thread(target=other)
    second.start()
    threshold = gc.get_threshold()
    gc.set_threshold(200)  # collect (and so hand over) often
    results = []
    try:
        HandOver()
        for _ in range(10):
            try:
                results.append(source_flags(cells, ["pgd_linf"]))
            except Exception as e:  # noqa: BLE001
                errors.append(e)
    finally:
        stop.set()
        gc.set_threshold(*threshold)
        second.join()
        gc.collect()
    assert len(handovers) > 10, "the finalizer never handed over: the test tests nothing"
    assert errors == []
    assert results == [expected] * 10
