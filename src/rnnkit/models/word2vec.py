"""word2vec (Mikolov et al. 2013): skip-gram and CBOW, trained by negative sampling or NCE.

Shapes: V vocabulary, E embedding size, B examples in a batch, K noise words per example, G groups
of S = B / G examples that share their noise words, C context slots (CBOW: 2·window, padded).

Two tables of vectors: ``w_in`` (V, E), the word vectors everyone keeps, and ``w_out`` (V, E), the
vectors a word has as a prediction target. For a (input, target) pair:

    skip-gram   input = the centre word's vector v = w_in[centre];    target = one context word
    CBOW        input = the mean of the context words' vectors h;     target = the centre word

and the target o is told apart from K noise words n_1..n_K drawn from the unigram distribution raised
to 3/4 (P_n):

    negative sampling   loss = −log σ(u_o·v) − Σ_k log σ(−u_k·v)                  (Mikolov et al. 2013)
    NCE                 s(w) = u_w·v + b_w − log(K·P_n(w))                          (Gutmann & Hyvärinen;
                        loss = −log σ(s(o)) − Σ_k log σ(−s(n_k))                     TensorFlow's nce_loss)

Training is plain SGD written out as the original C code does it, batched: each example's gradient
touches its target's and its noise words' rows of ``w_out`` and one row (skip-gram) or C rows (CBOW)
of ``w_in``, so the update is a sparse ``index_add_`` into those rows; nothing else is read or
written. Examples may share their K noise words in small groups (S > 1, BlazingText's trick), which
turns the noise products into small matrix products and updates S times fewer noise rows. Conflicting updates to
the same row within a batch add up (Hogwild-like, as the multi-threaded original). ``loss`` computes
the same objective with autograd, which the tests use to check the hand-written gradients.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..kernels import step_kernels

ARCHITECTURES = ("skipgram", "cbow")
LOSSES = ("negative", "nce")


@dataclass(frozen=True)
class Word2VecConfig:
    vocab_size: int                     # V
    dim: int = 100                      # E
    model: str = "skipgram"             # skipgram | cbow
    loss: str = "negative"              # negative | nce
    negatives: int = 5                  # K

    def __post_init__(self) -> None:
        if self.model not in ARCHITECTURES:
            raise ValueError(f"model must be one of {ARCHITECTURES}, got {self.model!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        for name in ("vocab_size", "dim", "negatives"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def to_json(self) -> dict:
        return asdict(self)


class Word2Vec(nn.Module):
    def __init__(self, config: Word2VecConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = c = config
        g = torch.Generator().manual_seed(seed)
        # The original's initialisation: input vectors U(−0.5/E, 0.5/E), output vectors zero.
        self.w_in = nn.Parameter((torch.rand(c.vocab_size, c.dim, generator=g) - 0.5) / c.dim,
                                 requires_grad=False)
        self.w_out = nn.Parameter(torch.zeros(c.vocab_size, c.dim), requires_grad=False)
        self.b_out = nn.Parameter(torch.zeros(c.vocab_size), requires_grad=False)   # NCE only
        self.register_buffer("log_noise", torch.zeros(c.vocab_size))   # log P_n(w), set_noise()

    def set_noise(self, probabilities: Tensor) -> None:
        """The noise distribution P_n (V,) that negatives are drawn from (NCE needs its values)."""
        self.log_noise.copy_(probabilities.clamp_min(1e-30).log())

    # --- the objective ------------------------------------------------------------------------------

    def _input(self, inputs: Tensor, w_in: Tensor) -> Tensor:
        """(B, E): the centre word's vector (inputs (B,)) or the mean of the valid context vectors
        (inputs (B, C), −1 marks padding)."""
        if inputs.dim() == 1:
            return w_in.index_select(0, inputs)           # index_select: 3x faster than w_in[inputs]
        valid = (inputs >= 0).unsqueeze(-1).to(w_in.dtype)                           # (B, C, 1)
        rows = w_in.index_select(0, inputs.clamp_min(0).reshape(-1)).view(*inputs.shape, -1)
        summed = (rows * valid).sum(1)                                               # (B, E)
        return summed / valid.sum(1).clamp_min(1)

    def _scores(self, v: Tensor, positive: Tensor, noise: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Scores of the true targets and of the noise words, and their output vectors.

        v (B, E); positive (B,); noise (G, K): the noise words of G groups of S = B / G consecutive
        examples (S = 1: every example its own, as the original). Returns s_pos (B,), s_neg
        (G, S, K), u_pos (B, E), u_neg (G, K, E). NCE's scores are corrected by −log(K·P_n(w)).
        """
        G, K = noise.shape
        u_pos = self.w_out.index_select(0, positive)                                  # (B, E)
        u_neg = self.w_out.index_select(0, noise.reshape(-1)).view(G, K, -1)          # (G, K, E)
        s_pos = (v * u_pos).sum(1)                                                    # (B,)
        s_neg = torch.bmm(v.view(G, -1, v.shape[1]), u_neg.transpose(1, 2))           # (G, S, K)
        if self.config.loss == "nce":
            log_k = torch.log(torch.tensor(float(K)))
            s_pos = s_pos + self.b_out[positive] - self.log_noise[positive] - log_k
            s_neg = s_neg + (self.b_out[noise] - self.log_noise[noise] - log_k).unsqueeze(1)
        return s_pos, s_neg, u_pos, u_neg

    def loss(self, inputs: Tensor, positive: Tensor, noise: Tensor) -> Tensor:
        """Mean loss over the batch, through autograd where the tables require gradients (the
        tests compare it with sgd_step's hand-written update). inputs (B,) or (B, C)."""
        s_pos, s_neg, _, _ = self._scores(self._input(inputs, self.w_in), positive, noise)
        return _pair_loss(s_pos, s_neg)

    @torch.no_grad()
    def sgd_step(self, inputs: Tensor, positive: Tensor, noise: Tensor, lr: float,
                 with_loss: bool = True) -> Optional[float]:
        """One SGD step on a batch, the gradients written out by hand; returns the mean loss (or
        None without ``with_loss``: the training loop samples it, computing it costs ~7 %). On
        the CPU with the compiled kernels the whole step is one C++ pass (``w2v_sgd``, the same
        arithmetic), else these torch ops.

        inputs (B,) centre words or (B, C) context words (−1: padding); positive (B,) the true
        targets; noise (G, K) the noise words, shared by each group of B / G consecutive examples
        (sharing them within a small group of shuffled, unrelated examples is BlazingText's trick,
        Gupta & Khare 2017: the products become small matrix products and far fewer rows are
        updated). With g = label − σ(s), the negative gradient of the loss with respect to s:
            w_out[t] += lr · g_t · v        for the target and every noise word t
            v        += lr · Σ_t g_t · u_t   (CBOW: shared by the context words, each gets it / count)
        """
        kernels = step_kernels(self.w_in)
        if kernels is not None:       # the same step in one compiled pass (rnnkit.kernels)
            loss = kernels.w2v_sgd(self.w_in, self.w_out, self.b_out, self.log_noise,
                                   inputs.long().contiguous(), positive.long().contiguous(),
                                   noise.long().contiguous(), lr, self.config.loss == "nce",
                                   with_loss)
            return loss if with_loss else None
        v = self._input(inputs, self.w_in)                                            # (B, E)
        s_pos, s_neg, u_pos, u_neg = self._scores(v, positive, noise)
        G, K = noise.shape
        g_pos = (1 - torch.sigmoid(s_pos)) * lr                                       # (B,)
        g_neg = torch.sigmoid(s_neg).mul_(-lr)                                        # (G, S, K)
        vg = v.view(G, -1, v.shape[1])                                                # (G, S, E)
        grad_v = g_pos.unsqueeze(1) * u_pos + torch.bmm(g_neg, u_neg).view_as(v)      # (B, E)
        self.w_out.index_add_(0, positive, g_pos.unsqueeze(1) * v)
        self.w_out.index_add_(0, noise.reshape(-1),
                              torch.bmm(g_neg.transpose(1, 2), vg).view(G * K, -1))  # (G·K, E)
        if self.config.loss == "nce":
            self.b_out.index_add_(0, positive, g_pos)
            self.b_out.index_add_(0, noise.reshape(-1), g_neg.sum(1).reshape(-1))
        if inputs.dim() == 1:
            self.w_in.index_add_(0, inputs, grad_v)
        else:
            valid = inputs >= 0                                                       # (B, C)
            share = grad_v / valid.sum(1, keepdim=True).clamp_min(1)                  # (B, E)
            rows = inputs[valid]                                                      # (n,)
            self.w_in.index_add_(0, rows, share.unsqueeze(1).expand(-1, inputs.shape[1], -1)[valid])
        return float(_pair_loss(s_pos, s_neg)) if with_loss else None

    # --- using the vectors ------------------------------------------------------------------------------

    def vectors(self) -> Tensor:
        """(V, E) the word vectors (the input table, as word2vec saves)."""
        return self.w_in.detach()


def _pair_loss(s_pos: Tensor, s_neg: Tensor) -> Tensor:
    """−log σ(s_target) − Σ_k log σ(−s_noise_k), averaged over the B examples."""
    return -(F.logsigmoid(s_pos).sum() + F.logsigmoid(-s_neg).sum()) / len(s_pos)


def unit_rows(matrix: Tensor) -> Tensor:
    """Rows scaled to length 1 (zero rows stay zero): cosine similarity becomes a dot product."""
    return matrix / matrix.norm(dim=1, keepdim=True).clamp_min(1e-12)


def nearest(unit: Tensor, query: Tensor, n: int, exclude: Optional[list[int]] = None
            ) -> list[tuple[int, float]]:
    """The n rows of ``unit`` (V, E) most cosine-similar to ``query`` (E,), best first."""
    scores = unit @ (query / query.norm().clamp_min(1e-12))                          # (V,)
    if exclude:
        scores[torch.tensor(exclude)] = -float("inf")
    top = torch.topk(scores, min(n, len(scores)))
    return [(int(i), float(s)) for s, i in zip(top.values, top.indices)]


def analogy_scores(unit: Tensor, a: Tensor, b: Tensor, c: Tensor, method: str = "add") -> Tensor:
    """Scores of every word d for "a is to b as c is to d" (a, b, c: ids (Q,)) → (Q, V).

    add (3CosAdd, Mikolov 2013):  cos(d, b) − cos(d, a) + cos(d, c)
    mul (3CosMul, Levy & Goldberg 2014): cos'(d, b) · cos'(d, c) / (cos'(d, a) + 0.001), with
    cos' = (cos + 1) / 2 so every factor is positive. The query words are excluded (−inf).
    """
    sims = [unit[x] @ unit.T for x in (a, b, c)]                                     # 3 × (Q, V)
    if method == "add":
        scores = sims[1] - sims[0] + sims[2]
    elif method == "mul":
        pa, pb, pc = ((s + 1) / 2 for s in sims)
        scores = pb * pc / (pa + 1e-3)
    else:
        raise ValueError(f"method must be 'add' or 'mul', got {method!r}")
    rows = torch.arange(len(a))
    for x in (a, b, c):
        scores[rows, x] = -float("inf")
    return scores
