"""NumPy reference: the lecture equations of RNN, LSTM and GRU with hand-written backpropagation
through time. NumPy only (never torch, never another rnnkit module): the tests use it as an
independent oracle for the torch code. Read `cells.py` (one step) and then `bptt.py` (the loop).
"""
from .bptt import bptt_backward, bptt_forward, finite_difference_gradients
from .cells import (
    CELLS,
    Cell,
    get_cell,
    gru_step_backward,
    gru_step_forward,
    init_params,
    init_state,
    lstm_step_backward,
    lstm_step_forward,
    rnn_step_backward,
    rnn_step_forward,
    sigmoid,
)

__all__ = [
    "CELLS", "Cell", "get_cell", "init_params", "init_state", "sigmoid",
    "rnn_step_forward", "rnn_step_backward", "lstm_step_forward", "lstm_step_backward",
    "gru_step_forward", "gru_step_backward",
    "bptt_forward", "bptt_backward", "finite_difference_gradients",
]
