"""``rnnkit lab``: seeing inside recurrent networks — why gradients vanish in a plain RNN, which
cells remember over long spans (the classic memory tasks), how saturated the gates are, and what
single hidden units track in a trained language model.

    memory.py     the adding, copy and parity tasks; one small model; runs through the trainer
    gradients.py  ‖∂loss/∂h_t‖ and ‖∂loss/∂x_t‖ against the distance to the loss, per cell
    inside.py     gate saturation and forget-gate histograms; the neuron viewer's unit ranking
"""
