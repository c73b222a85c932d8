"""The training, course, challenge and zoo packages: the split modules' old paths
(``advlab.train.engine``, ``advlab.course.grade``, ``advlab.zoo.publish``) hand out the same
objects as their new homes."""

from __future__ import annotations

import importlib

import pytest

SAME = {
    "advlab.train.engine": {"TrainResult": "run", "init_model": "weights",
                            "save_weights": "weights", "resolve_device": "devices"},
    "advlab.course.grade": {"grade_folder": "class_grading", "grade_gradescope": "class_grading",
                            "GradingError": "class_grading", "write_results": "class_grading",
                            "write_summary_csv": "class_grading",
                            "find_submissions": "class_grading",
                            "grade_submission": "submission_grading",
                            "static_flags": "submission_grading",
                            "read_notebook_cells": "notebook_cells", "SKIP_TAG": "notebook_cells",
                            "SubmissionResult": "submission_result",
                            "TestResult": "submission_result", "grader_hash": "submission_result",
                            "case_payloads": "scoring", "harvest_timeout": "scoring",
                            "advlab_version": "gradescope"},
    "advlab.zoo.publish": {"card_text": "model_card", "write_card": "model_card",
                           "TRAINING_NOTES": "card_notes", "MEASURE_NOTES": "card_notes",
                           "evaluate": "measure", "merge": "measure", "RESULTS": "measure",
                           "publish": "shipping", "register_weights": "shipping",
                           "run_weights": "shipping"},
    "advlab.challenge.results": {"advlab_version": "advlab.course.gradescope",
                                 "write_new": "advlab.course.gradescope"},
}


@pytest.mark.parametrize("old", sorted(SAME))
def test_old_module_paths_hand_out_the_same_objects(old):
    module = importlib.import_module(old)
    package = old.rsplit(".", 1)[0]
    for name, home in SAME[old].items():
        new = importlib.import_module(home if "." in home else f"{package}.{home}")
        assert getattr(module, name) is getattr(new, name), (old, name)
        assert name in module.__all__, (old, name)


def test_no_new_module_hides_a_package_attribute():
    """A submodule becomes an attribute of its package on import: none may replace a function
    of the same name (``advlab.zoo.card``, ``advlab.course.check``, ``advlab.train.train``)."""
    import advlab.course
    import advlab.course.grade  # noqa: F401
    import advlab.train
    import advlab.train.engine  # noqa: F401
    import advlab.zoo
    import advlab.zoo.publish  # noqa: F401

    assert callable(advlab.zoo.card) and callable(advlab.course.check)
    assert callable(advlab.train.train)
