"""rnnkit: recurrent neural networks on PyTorch.

Public API re-exports only; importing rnnkit has no side effects.
"""
from .cells import GRUCell, LSTMCell, RNNCell, gru_cell, gru_step, lstm_cell, lstm_step, rnn_cell, \
    rnn_step
from .layers import GRU, LSTM, RNN
from .scan import MinGRU, MinLSTM
from .unroll import detach_state, reverse_within_lengths, unroll

__version__ = "0.1.0"

__all__ = [
    "RNN", "LSTM", "GRU", "MinGRU", "MinLSTM", "RNNCell", "LSTMCell", "GRUCell",
    "rnn_cell", "lstm_cell", "gru_cell", "rnn_step", "lstm_step", "gru_step",
    "unroll", "detach_state", "reverse_within_lengths",
]
