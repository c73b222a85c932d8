"""Notebook aids: what the course notebooks draw and show, none of it needed to evaluate a model.

- ``widgets``: figures of an attack and the interactive explorers (``AttackExplorer``,
  ``TradeoffExplorer``);
- ``viz``: seeing gradient masking (first-layer filters, their activations, the loss surface);
- ``figures``: the course's small figures and the published numbers it cites (kept in
  ``advlab.zoo.published``, re-exported here);
- ``tradeoff``: the l_inf / l_1 trade-off, exactly, on the distribution of Tsipras et al.

Each module is imported on its own (``from advlab.notebook.widgets import AttackExplorer``);
the old flat paths (``advlab.widgets``, ``advlab.viz``, ``advlab.course_figures``,
``advlab.tradeoff``) are these same modules.
"""
