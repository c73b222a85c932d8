"""The command line is one package, ``advlab.cli``, with a module per command.

Each command module imports on its own (no import cycle, no torch; short modules and no
private imports: tests/test_package_layout.py, for the whole package); the old module paths
(``advlab.eval_cli``, ``advlab.train.cli``, ``advlab.zoo.cli``, ``advlab.course.cli``) hand
out the same objects.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys

import pytest

from advlab.cli import COMMAND_MODULES, COMMANDS


def test_every_command_has_a_module_of_the_package():
    assert set(COMMANDS) == {"eval", "train", "zoo", "course", "grade", "challenge"}
    assert all(m.startswith("advlab.cli.") for m in COMMAND_MODULES)
    for name in COMMAND_MODULES:
        assert callable(importlib.import_module(name).register), name


@pytest.mark.parametrize("name", ["advlab.cli.common", *COMMAND_MODULES])
def test_a_command_module_imports_first_and_alone_without_torch(name):
    code = (f"import sys, {name}\n"
            "print('torch' in sys.modules, sorted(k for k in sys.modules "
            "if k.startswith('advlab.cli')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    torch, loaded = res.stdout.split(" ", 1)
    assert torch == "False", name
    # a command module needs only the shared helpers (zoo and challenge take eval's strengths)
    allowed = {"advlab.cli", "advlab.cli.common", name, "advlab.cli.eval"}
    assert set(ast.literal_eval(loaded)) <= allowed, loaded


def test_the_cli_and_the_challenge_format_name_the_presets_strengths():
    # one home (advlab.evaluation.strengths, torch-free): every name the CLI accepts is a preset
    from advlab.challenge.spec import STRENGTHS as challenge_strengths
    from advlab.cli.eval import STRENGTHS as cli_strengths
    from advlab.evaluation.presets import STRENGTHS, attacks

    assert cli_strengths == challenge_strengths == tuple(STRENGTHS)
    for name in cli_strengths:
        assert set(attacks("mnist", name)) == {"linf", "l1", "l2", "rt"}, name


def test_old_module_paths_hand_out_the_same_objects():
    import advlab.cli.eval as cli_eval
    from advlab.cli import course, train, zoo
    from advlab.course import cli as course_cli
    from advlab.eval_cli import DEFAULT_N, plan, register, trusted_command
    from advlab.train import cli as train_cli
    from advlab.zoo import cli as zoo_cli

    assert (plan, register, trusted_command, DEFAULT_N) == (
        cli_eval.plan, cli_eval.register, cli_eval.trusted_command, cli_eval.DEFAULT_N)
    assert train_cli.register is train.register and train_cli.main is train.main
    assert zoo_cli.register is zoo.register
    assert course_cli.register is course.register and callable(course_cli.main)


@pytest.mark.parametrize("module", ["advlab", "advlab.cli", "advlab.course.cli", "advlab.train"])
def test_python_m_entry_points_answer_help(module):
    res = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "usage:" in res.stdout
