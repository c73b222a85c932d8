"""The grader's own copy of the checks, one module per exercise (``ex1`` ... ``ex6``).

Each module defines ``EXERCISE``, an :class:`advlab.course.spec.Exercise` whose questions build
their cases (deterministic inputs) and judges (reference answers computed by the grader's own
reference code in this package, never by the submission).
"""
