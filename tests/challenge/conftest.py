"""Shared pieces of the challenge tests: a small PGD written the way a student would, the zoo's
standard model, and notebooks made from source strings."""

from __future__ import annotations

import nbformat
import pytest
import torch

STUDENT_PGD = '''
import torch
import torch.nn.functional as F

def attack(model, x, y, threat):
    """l_inf PGD, 10 steps of eps/4, projected onto the ball and the box."""
    x_adv = x.clone()
    for _ in range(10):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        (g,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach() + threat.eps / 4 * g.sign()
        x_adv = torch.min(torch.max(x_adv, x - threat.eps), x + threat.eps).clamp(0, 1)
    return x_adv
'''


def student_pgd():
    """The function STUDENT_PGD defines, for use in this process."""
    ns: dict = {}
    exec(compile(STUDENT_PGD, "<student>", "exec"), ns)
    return ns["attack"]


def notebook(*sources: str) -> bytes:
    """A notebook with one code cell per source, as bytes."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    return nbformat.writes(nb).encode()


def accuracy_on(model, x, y) -> float:
    """Plain accuracy of ``model`` on (x, y), computed here (not by the grader)."""
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


@pytest.fixture(scope="session")
def zoo_standard():
    import advlab.zoo

    return advlab.zoo.load("mnist-standard")


@pytest.fixture(scope="session")
def small_images():
    """48 MNIST test images."""
    from advlab.data import mnist_tensors

    return mnist_tensors(48, train=False)
