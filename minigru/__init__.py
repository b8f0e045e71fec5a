"""minigru: gated recurrent networks from scratch, for people who want to understand them.

    import minigru as mg
    cell = mg.cell("gru")                       # forward, backward, step, init
    mg.VARIANTS                                 # the 15 variants of VARIANTS.md
    mg.gradcheck("gru")                         # every gradient against finite differences
"""

from .cell import Cell, cell
from .cells import VARIANTS
from .gradcheck import gradcheck
from .module import Model, Module
from .rnn import RNN

__version__ = "0.1.0"
__all__ = ["VARIANTS", "Cell", "Model", "Module", "RNN", "cell", "gradcheck", "__version__"]
