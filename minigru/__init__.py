"""minigru: gated recurrent networks from scratch, for people who want to understand them.

    import minigru as mg
    cell = mg.cell("gru")                       # forward, backward, step, init
    mg.VARIANTS                                 # the 21 variants of VARIANTS.md
    mg.gradcheck("gru")                         # every gradient against finite differences
    mg.RNN("gru", 8, 16, num_layers=2)          # layers as torch.nn.GRU, forward and backward
    mg.optim.Adam, mg.fit, mg.save_checkpoint   # training
"""

from . import losses, optim
from .cell import Cell, cell
from .cells import VARIANTS, BackendUnavailableError
from .checkpoint import load_checkpoint, save_checkpoint
from .gradcheck import gradcheck
from .layers import Embedding, Linear
from .module import Model, Module
from .rnn import RNN
from .train import History, fit

__version__ = "0.1.0"
__all__ = ["VARIANTS", "BackendUnavailableError", "Cell", "Embedding", "History", "Linear",
           "Model", "Module", "RNN", "cell", "fit", "gradcheck", "load_checkpoint", "losses",
           "optim", "save_checkpoint", "__version__"]
