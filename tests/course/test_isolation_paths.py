"""The grader's sandbox binds Python's folders: a venv below /tmp, or one closed to others."""

from __future__ import annotations

from advlab.course.isolation import Isolation, Scratch, _closed_to_others, bwrap_command


def test_a_folder_closed_to_other_users_rules_out_uid_isolation(tmp_path):
    d = tmp_path / "venv"
    d.mkdir()
    d.chmod(0o700)
    why = _closed_to_others([d])
    assert str(d) in why and "chmod o+rx" in why
    d.chmod(0o755)
    assert _closed_to_others([d]) == ""


def test_private_tmp_is_mounted_before_pythons_folders(tmp_path, monkeypatch):
    """A venv below /tmp (CI's fresh one) must be bound after the private /tmp, not hidden."""
    from advlab.course import isolation

    venv = tmp_path / "venv"  # pytest's tmp_path lies below /tmp
    venv.mkdir()
    assert str(venv).startswith("/tmp/")
    monkeypatch.setattr(isolation, "python_paths", lambda: [venv])
    args = bwrap_command(Isolation("uid", "/usr/bin/bwrap", ""), Scratch(tmp_path / "s"), None)
    private_tmp = next(i for i, a in enumerate(args) if a == "/tmp" and args[i - 1] == "--tmpfs")
    bind = next(i for i, a in enumerate(args) if a == str(venv) and args[i - 1] == "--ro-bind")
    assert private_tmp < bind
