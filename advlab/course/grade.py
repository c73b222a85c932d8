"""Grade submitted notebooks: one fresh sandboxed kernel each, judged by the grader's own checks.

:func:`grade_folder` reads every submission up front (so a submission that writes over its
neighbours changes nothing), grades each with :func:`grade_submission` (optionally in
parallel) and writes, per student, a Gradescope-format ``results.json`` and, for the class,
``summary.csv``. Inside the kernel only the student's code runs; the inputs come from the
grader, and the returned values are compared with reference answers in this process.

The grader's parts, each importable on its own; their public names stay importable here:

- :mod:`.class_grading`: a class folder (or Gradescope's one submission), results written;
- :mod:`.submission_grading`: one notebook, in a kernel of :mod:`.kernel_session`;
- :mod:`.scoring`: the kernel's inputs and outcomes, the scored tests;
- :mod:`.submission_result`: the grade's shape, its Gradescope form, its summary text;
- :mod:`.notebook_cells`: the code cells of a submitted notebook;
- :mod:`.gradescope`: the ``results.json`` pieces shared with :mod:`advlab.challenge`.
"""

from __future__ import annotations

from .class_grading import (
    GradingError,
    find_submissions,
    grade_folder,
    grade_gradescope,
    write_results,
    write_summary_csv,
)
from .engine import Limits
from .gradescope import advlab_version
from .notebook_cells import SKIP_TAG, read_notebook_cells
from .scoring import MAX_OUTPUT_FILE, STATUSES, case_payloads, harvest_timeout
from .submission_grading import grade_submission, static_flags
from .submission_result import SubmissionResult, TestResult, grader_hash

__all__ = [
    "MAX_OUTPUT_FILE",
    "SKIP_TAG",
    "STATUSES",
    "GradingError",
    "Limits",
    "SubmissionResult",
    "TestResult",
    "advlab_version",
    "case_payloads",
    "find_submissions",
    "grade_folder",
    "grade_gradescope",
    "grade_submission",
    "grader_hash",
    "harvest_timeout",
    "read_notebook_cells",
    "static_flags",
    "write_results",
    "write_summary_csv",
]
