"""The evaluation layer: how robust a model is, and whether that number can be trusted.

- ``union``: the union evaluator, ``evaluate_union`` (accuracy per threat and under the union)
  and ``accuracy``;
- ``presets``: the paper's threat models and budgets and the attack stacks per strength
  (``attacks``, ``trusted_attacks``: the evaluation behind every published number);
- ``strengths``: the strengths' steps, restarts and queries (torch-free, for the CLI);
- ``diagnostics``: ``diagnose``, the named gradient-masking checks (``CHECKS``);
- ``affine``: the affine set of two threats (its attacks, one model's row of notebook 6's
  table); ``affine_stored``: that table as measured on the zoo (by ``advlab.zoo.affine_table``).

Each module is imported on its own (``from advlab.evaluation.union import evaluate_union``);
the old flat paths (``advlab.evaluate``, ``advlab.presets``, ``advlab.diagnose``,
``advlab.affine_eval``, ``advlab.affine_stored``) are these same modules.
"""
