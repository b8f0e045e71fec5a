"""The demos: what a learner runs first. Installed as ``minigru.demos``; each file also runs as
``python demos/<name>.py``. ``minigru demo NAME`` runs one, ``minigru race`` compares variants
on a demo's task (see ``_common.py`` for what a demo module provides)."""

from importlib import import_module

# demo name -> module
DEMOS = {
    "binary-addition": "binary_addition",
    "sine": "sine",
    "noise-race": "noise_race",
    "digits": "digits",
    "adding": "adding",
    "gradient-flow": "gradient_flow",
    "char-lm": "char_lm",
    "chorales": "chorales",
    "regularisers": "regularisers",
}

# race task name -> module providing train_variant
TASKS = {
    "binary-addition": "binary_addition",
    "sine": "sine",
    "noise": "noise_race",
    "digits": "digits",
    "adding": "adding",
    "chorales": "chorales",
}


def load(name, table=None):
    table = DEMOS if table is None else table
    if name not in table:
        raise ValueError(f"unknown demo {name!r}; the demos are {', '.join(table)}")
    return import_module(f"{__name__}.{table[name]}")
