"""Every user mistake on the command line gets one or two lines, exit status 2, no traceback.

Each case runs ``python -m advlab`` for real in a subprocess (the way a user meets it) and must
answer within 5 s of CPU time (plus a torch import's for the checks that need torch, e.g. which
devices exist), without having trained or attacked anything. CPU time, not wall time: on an
idle machine they are the same, and on a busy CI machine only CPU time says what the command
itself spent.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

SNIFF = ("import sys, runpy; sys.argv = ['advlab'] + sys.argv[1:]\n"
         "try:\n    runpy.run_module('advlab', run_name='__main__')\n"
         "finally:\n"
         "    work = [m for m in ('advlab.evaluate', 'advlab.train.basic', 'advlab.train.engine')"
         " if m in sys.modules] + ['torch'] * ('torch' in sys.modules)\n"
         "    print('WORK:', ','.join(work), file=sys.stderr)\n")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


_TORCH_IMPORT: list[float] = []


def _torch_import_cpu() -> float:
    """CPU seconds of a plain torch import in a fresh process (measured once)."""
    if not _TORCH_IMPORT:
        t0 = _children_cpu()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        _TORCH_IMPORT.append(_children_cpu() - t0)
    return _TORCH_IMPORT[0]


@pytest.fixture(scope="module")
def torch_import_s() -> float:
    return _torch_import_cpu()


def advlab(*args: str, env: dict | None = None, timeout: float = 300):
    """(exit status, stdout, stderr lines without the WORK line, modules that did work,
    CPU seconds of the command)."""
    t0 = _children_cpu()
    res = subprocess.run([sys.executable, "-c", SNIFF, *args], capture_output=True, text=True,
                         timeout=timeout, env={**os.environ, **(env or {})})
    took = _children_cpu() - t0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    work = [ln for ln in lines if ln.startswith("WORK:")]
    lines = [ln for ln in lines if not ln.startswith("WORK:")]
    done = work[-1].split(":", 1)[1].strip() if work else "?"
    return res.returncode, res.stdout, lines, done, took


def assert_user_error(args, match: str, limit: float, env=None, torch: bool = True):
    """One or two lines, status 2, no traceback, in time; nothing evaluated or trained (and
    torch not even imported unless ``torch``)."""
    rc, out, err, work, took = advlab(*args, env=env)
    text = "\n".join(err)
    assert rc == 2, (rc, out, text)
    assert 1 <= len(err) <= 2, text
    assert "Traceback" not in text and "Traceback" not in out
    assert match in err[0], text
    done = [m for m in work.split(",") if m and (m != "torch" or not torch)]
    assert not done, f"work was done before the refusal: {work}"
    if "torch" in work.split(","):  # a torch import's CPU time grows on a loaded machine
        limit = max(limit, 1.5 * _torch_import_cpu() + 3.0)
    assert took < limit, f"{args}: {took:.1f} s of CPU"
    return err


# ---------------------------------------------------------------- advlab eval: one bad argument

NO_TORCH = [  # refused before torch is even imported
    (["eval", "--n", "-5"], "argument --n: must be in 1..10000, got -5"),
    (["eval", "--n", "0"], "must be in 1..10000"),
    (["eval", "--n", "10001"], "must be in 1..10000"),
    (["eval", "--n", "abc"], "expected an integer, got 'abc'"),
    (["eval", "--strength", "huge"], "argument --strength: invalid choice: 'huge'"),
    (["eval", "--threats", "linf,l7"], "unknown threats ['l7']; choose from linf, l1, l2, rt"),
    (["eval", "--zoo", "mnist-foo"], "unknown zoo model 'mnist-foo'; shipped: mnist-standard"),
    (["eval", "--zoo", "mnist-linf", "--train"], "not allowed with argument"),
    (["eval", "--checkpoint", "nowhere.safetensors"], "--checkpoint nowhere.safetensors: no such"),
    (["eval", "--train-n", "100"], "--train-n and --seed only apply with --train"),
    (["eval", "--arch", "madry-cnn"], "--arch only applies to --checkpoint"),
    (["eval", "--json", "/no/such/folder/acc.json"], "the folder /no/such/folder does not exist"),
    (["eval", "--data", "/no/such/folder"], "--data /no/such/folder: no such folder"),
    (["eval", "--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize("args, match", NO_TORCH, ids=[" ".join(a) for a, _ in NO_TORCH])
def test_eval_refuses_a_bad_argument_at_once(args, match):
    assert_user_error(args, match, limit=5.0, torch=False)


def test_eval_n_is_refused_before_any_training():
    """The issue's case: `--train --n -5` used to train for minutes, then refuse --n."""
    rc, out, err, work, took = advlab("eval", "--train", "--n", "-5", "--threats", "linf")
    assert rc == 2 and "argument --n: must be in 1..10000, got -5" in err[0]
    assert "trained" not in out and work == "" and took < 5  # not even torch imported
    # a bad argument found after parsing (it needs the list of threats) is refused before too
    rc, out, err, work, took = advlab("eval", "--train", "--train-n", "100", "--threats", "l7")
    assert rc == 2 and "unknown threats" in err[0] and "trained" not in out
    assert work in ("", "torch")


@pytest.mark.parametrize("device", ["gpu", "cuda:7", "tpu"])
def test_eval_unavailable_device_lists_the_devices(device, torch_import_s):
    limit = max(5.0, torch_import_s + 3.0)  # which devices exist is torch's to say
    err = assert_user_error(["eval", "--device", device], f"--device {device}", limit)
    assert "available here: cpu" in err[0]


@pytest.fixture(scope="module")
def torchvision_import_s() -> float:
    """CPU seconds of importing torch and torchvision in a fresh process."""
    t0 = _children_cpu()
    subprocess.run([sys.executable, "-c", "import torch, torchvision"], check=True)
    return _children_cpu() - t0


def test_eval_data_not_found_says_where_to_put_it(tmp_path, torchvision_import_s):
    # the download that is tried (and fails here) is torchvision's: its import is the floor
    err = assert_user_error(["eval", "--data", str(tmp_path)], "MNIST was not found in",
                            limit=max(5.0, torchvision_import_s + 3.0))
    assert "ADVLAB_DATA" in err[0] and str(tmp_path / "MNIST") in err[0]
    assert not (tmp_path / "MNIST").exists()


def test_eval_checkpoint_that_is_not_a_state_dict(tmp_path, torch_import_s):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"not a safetensors file")
    rc, out, err, work, took = advlab("eval", "--checkpoint", str(bad), "--n", "4")
    assert rc == 2 and len(err) <= 2 and "not a state dict of compact-cnn" in err[0]
    other = tmp_path / "model.pt"
    other.write_bytes(b"")
    assert_user_error(["eval", "--checkpoint", str(other)], "expected a .safetensors state dict",
                      limit=5.0)


def test_debug_shows_the_traceback():
    for how in (["--debug"], []):
        env = {} if how else {"ADVLAB_DEBUG": "1"}
        rc, out, err, work, took = advlab("eval", "--zoo", "mnist-foo", *how, env=env)
        assert rc == 1 and any("Traceback" in ln for ln in err), err
        assert "UsageError: --zoo: unknown zoo model 'mnist-foo'" in err[-1]


# ------------------------------------------------------------------------ train, zoo, top level

def test_train_unknown_recipe_and_bad_numbers(tmp_path):
    err = assert_user_error(["train", "--recipe", "mnist-lnf"], "unknown recipe 'mnist-lnf'", 5.0)
    assert "mnist-linf" in err[0] and "advlab train --list" in err[0]
    assert_user_error(["train"], "give --recipe NAME; choose one of: ", 5.0)
    assert_user_error(["train", "--recipe", "mnist-linf", "--epochs", "0"],
                      "argument --epochs: must be >= 1, got 0", 5.0)
    assert_user_error(["train", "--recipe", "mnist-linf", "--n-train", "-1"],
                      "argument --n-train", 5.0)
    assert_user_error(["train", "--recipe", "mnist-linf", "--stop-after-minutes", "-2"],
                      "must be a finite number > 0", 5.0)
    assert_user_error(["train", "--recipe", "mnist-linf", "--resume", "--out", str(tmp_path)],
                      "--resume: no checkpoint to resume from", 5.0)


def test_zoo_table_stored_unknown_name_lists_the_models():
    err = assert_user_error(["zoo", "table", "--stored", "mnist-foo"],
                            "zoo model 'mnist-foo' is unknown; the models: mnist-standard", 5.0)
    assert err[0].startswith("advlab zoo table: error:") and "mnist-linf-rt-max" in err[0]
    assert_user_error(["zoo", "table", "--n", "-5"], "argument --n: must be in 1..10000", 5.0)


def test_unknown_command():
    assert_user_error(["evaluate"], "argument COMMAND: invalid choice: 'evaluate'", 5.0)
