"""``rnnkit train caption`` / ``caption`` / ``eval``: image captioning (one-to-many).

Shapes: N images, M (image, caption) examples, B batch, S image side, T caption length.

Data: a folder of images with a captions file (``--images DIR --captions FILE``: ``name<TAB>caption``
lines, several per image allowed), generated coloured shapes with compositional captions whose test
half shows colour–shape combinations never seen in training (``--dataset shapes``), or the Tux Paint
stamps with their English descriptions (``--dataset tuxpaint``, Debian's tuxpaint-stamps-default).
Each (image, caption) pair is one training example; the ``best`` checkpoint has the lowest
validation loss per word.

Evaluation captions each test image greedily and by beam search and scores BLEU-1..4 against all of
its reference captions (sacrebleu, on the lower-cased tokens), the exact-match rate, and, beside
them, a nearest-neighbour baseline that copies the caption of the most similar training image
(by the trained CNN's image vector, and by raw pixels).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..attention import ATTENTION
from ..data.batching import BucketBatches, pad_sequences
from ..data.errors import data_from
from ..data.images import (Captioned, caption_tokens, load_image, read_captions, shapes_splits,
                           split_captioned, tuxpaint_splits)
from ..data.vocab import TokenVocab, vocab_from_json
from ..decoder import CELLS, teacher_inputs
from ..models.captioner import Captioner, CaptionerConfig
from ..train.checkpoint import load_checkpoint
from ..train.trainer import TrainConfig, Trainer
from ..viz.plots import plot_caption_attention
from .common import (BatchedTask, UsageError, add_training_arguments, apply_recipe, checkpoint_path,
                     new_run_dir, per_epoch_evaluation, read_json, refuse_changed_test_split,
                     resolve_device, resumable_config, resume_device, train_config, write_json)

TASK = "caption"
DATASETS = ("shapes", "tuxpaint")
RECIPES: dict[str, dict] = {
    "shapes": dict(image_size=32, channels=[32, 64, 128], grid=4, attention="additive", embed=32,
                   hidden=128, dropout=0.0, lr=3e-3, batch_size=64, epochs=8, min_count=1),
    "tuxpaint": dict(image_size=64, channels=[32, 64, 128, 128], grid=4, attention="additive",
                     embed=64, hidden=256, dropout=0.3, lr=2e-3, batch_size=32, epochs=40,
                     min_count=2),
    "files": dict(image_size=64, channels=[32, 64, 128, 128], grid=4, attention="additive",
                  embed=64, hidden=256, dropout=0.3, lr=2e-3, batch_size=32, epochs=20,
                  min_count=2),
}
DEFAULT_BEAMS = (1, 3)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("data")
    src = d.add_mutually_exclusive_group()
    src.add_argument("--dataset", choices=DATASETS, help="generated shapes or the Tux Paint stamps")
    src.add_argument("--images", type=Path, metavar="DIR", help="your images (with --captions)")
    d.add_argument("--captions", type=Path, metavar="FILE", help="name<TAB>caption lines")
    d.add_argument("--encoding", default="utf-8")
    d.add_argument("--image-size", type=int, help="images are letterboxed to this square side")
    d.add_argument("--min-count", type=int, help="rarer caption words become <unk>")
    m = p.add_argument_group("model")
    m.add_argument("--cell", choices=sorted(CELLS), default="lstm")
    m.add_argument("--channels", type=int, nargs="+", help="CNN channels, one block each")
    m.add_argument("--grid", type=int, help="attention over a G×G grid of image regions")
    m.add_argument("--embed", type=int)
    m.add_argument("--hidden", type=int)
    m.add_argument("--layers", type=int, default=1)
    m.add_argument("--attention", choices=ATTENTION)
    m.add_argument("--dropout", type=float)
    m.add_argument("--length-penalty", type=float, default=0.6, help="beam search α")
    add_training_arguments(p, lr=None, batch_size=None, eval_every=None)


# ---- data ----------------------------------------------------------------------------------------

def _data_config(args) -> dict:
    if not (args.dataset or args.images):
        raise UsageError("give the images: --dataset shapes|tuxpaint or --images DIR --captions FILE")
    if bool(args.images) != bool(args.captions):
        raise UsageError("--images DIR and --captions FILE go together")
    if args.image_size < 8:
        raise UsageError(f"--image-size must be at least 8, got {args.image_size}")
    if args.min_count < 1:
        raise UsageError(f"--min-count must be at least 1, got {args.min_count}")
    return {"dataset": args.dataset, "images": _str(args.images), "captions": _str(args.captions),
            "encoding": args.encoding, "image_size": args.image_size, "min_count": args.min_count}


def _str(path: Optional[Path]) -> Optional[str]:
    return None if path is None else str(path)


def load_splits(d: dict) -> dict[str, Captioned]:
    if d["dataset"] == "shapes":
        return shapes_splits(size=d["image_size"])
    if d["dataset"] == "tuxpaint":
        return tuxpaint_splits(size=d["image_size"])
    captioned = read_captions(d["images"], d["captions"], d["image_size"], d["encoding"], cache=True)
    with data_from(d["captions"]):              # too few images for a split
        return split_captioned(captioned)


def captioned_fingerprint(data: Captioned) -> str:
    h = hashlib.sha256(np.ascontiguousarray(data.images).tobytes())
    for name, refs in zip(data.names, data.captions):
        h.update(("\t".join([name, *refs]) + "\n").encode("utf-8", "surrogatepass"))
    return h.hexdigest()


@dataclass
class Encoded:
    """Images (N, 3, S, S) and every (image, caption) example: image index (M,), targets (M, T)."""

    images: Tensor
    image_of: Tensor
    targets: Tensor
    lengths: Tensor

    def batch(self, idx: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
        T = int(self.lengths[idx].max())
        return self.images[self.image_of[idx]].to(device), self.targets[idx, :T].to(device)


def encode(data: Captioned, vocab: TokenVocab) -> Encoded:
    image_of, ids = [], []
    for i, refs in enumerate(data.captions):
        for caption in refs:
            image_of.append(i)
            ids.append(vocab.encode(caption_tokens(caption)) + [TokenVocab.eos_id])
    targets, lengths = pad_sequences(ids, TokenVocab.pad_id)
    return Encoded(torch.from_numpy(np.ascontiguousarray(data.images, dtype=np.float32)),
                   torch.tensor(image_of), targets, lengths)


# ---- the hooks the trainer calls ---------------------------------------------------------------

class CaptionTask(BatchedTask):
    unit = "words"

    def __init__(self, train: Encoded, valid: Encoded, batch_size: int, seed: int,
                 device: torch.device) -> None:
        self.train, self.valid, self.device = train, valid, device
        self.batches = BucketBatches(train.lengths, batch_size, seed)

    def train_step(self, model: nn.Module) -> tuple[Tensor, int]:
        images, targets = self.train.batch(next(self.batches), self.device)
        logits, _ = model(images, teacher_inputs(targets, TokenVocab.go_id))
        return model.decoder.loss(logits, targets), int((targets != TokenVocab.pad_id).sum())

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        model.eval()
        batches = (self.valid.batch(idx, self.device)
                   for idx in torch.arange(len(self.valid.lengths)).split(256))
        scores = model.decoder.validation_scores(
            (model(images, teacher_inputs(targets, TokenVocab.go_id))[0], targets)
            for images, targets in batches)
        model.train()
        return scores


# ---- training ----------------------------------------------------------------------------------

def train(args: argparse.Namespace) -> dict:
    if args.resume:
        return _resume(args)
    recipe = args.dataset or "files"
    apply_recipe(args, RECIPES[recipe])
    d = _data_config(args)
    device = resolve_device(args.device)
    cfg = train_config(args, device)
    splits = load_splits(d)                    # every data error before the run directory exists
    vocab = TokenVocab.build((caption_tokens(c) for refs in splits["train"].captions for c in refs),
                             d["min_count"])
    enc = {name: encode(part, vocab) for name, part in splits.items()}
    cfg = per_epoch_evaluation(cfg, -(-len(enc["train"].lengths) // args.batch_size))
    try:
        model_cfg = CaptionerConfig(vocab=len(vocab), image_size=d["image_size"],
                                    channels=tuple(args.channels), grid=args.grid, embed=args.embed,
                                    hidden=args.hidden, layers=args.layers, cell=args.cell,
                                    attention=args.attention, dropout=args.dropout)
    except ValueError as e:
        raise UsageError(str(e)) from None
    d = dict(d, test_fingerprint=captioned_fingerprint(splits["test"]),
             max_output=int(enc["train"].lengths.max()) + 5)
    config = {"task": TASK, "model": model_cfg.to_json(), "train": asdict(cfg), "data": d,
              "recipe": recipe, "device": str(device), "batch_size": args.batch_size,
              "length_penalty": args.length_penalty,
              "sizes": {name: len(part) for name, part in splits.items()},
              "skipped": splits["train"].skipped}
    run = new_run_dir(args.out, TASK)
    write_json(run / "config.json", config)
    write_json(run / "vocab.json", vocab.to_json())
    sizes = config["sizes"]
    print(f"run directory: {run}\n{sizes['train']:,} training, {sizes['valid']:,} validation and "
          f"{sizes['test']:,} test images ({len(enc['train'].lengths):,} training captions); "
          f"vocabulary {len(vocab):,} words", file=sys.stderr)
    torch.manual_seed(cfg.seed)
    model = Captioner(model_cfg).to(device)
    task = CaptionTask(enc["train"], enc["valid"], args.batch_size, cfg.seed, device)
    return _fit_and_test(run, config, vocab, model, task, splits, cfg, device, resume=False)


def _fit_and_test(run: Path, config: dict, vocab: TokenVocab, model: Captioner, task: CaptionTask,
                  splits: dict, cfg: TrainConfig, device: torch.device, resume: bool) -> dict:
    m = config["model"]
    print(f"model: CNN {m['channels']} → {m['layers']}×{m['hidden']} {m['cell'].upper()}, attention "
          f"{m['attention']} over {m['grid']}×{m['grid']} regions; "
          f"{sum(p.numel() for p in model.parameters()):,} parameters on {device}", file=sys.stderr)
    meta = {"task": TASK, "config": config, "vocab": vocab.to_json()}
    summary = Trainer(model, task, cfg, run, meta, device, resume=resume).fit()
    best, _, _ = load_run(run, device)
    result = test_run(run, best, config, vocab, splits, device)
    scores = ", ".join(f"{name}: BLEU-4 {r['bleu_4']:.1f}, exact {100 * r['exact_match']:.1f} %"
                       for name, r in result["decoding"].items())
    print(f"done: {summary['steps']} steps in {summary['seconds']:.0f} s; test {scores}; "
          f"nearest-neighbour caption BLEU-4 {result['nearest_neighbour']['features']['bleu_4']:.1f}",
          file=sys.stderr)
    return {**summary, "test": result}


def _resume(args: argparse.Namespace) -> dict:
    run = args.resume
    config = resumable_config(run, TASK, "a captioning run")
    device = resume_device(args, config)
    splits = _checked_splits(run, config)
    vocab = vocab_from_json(read_json(run / "vocab.json"))
    cfg = TrainConfig(**config["train"])
    model = Captioner(CaptionerConfig(**config["model"])).to(device)
    task = CaptionTask(encode(splits["train"], vocab), encode(splits["valid"], vocab),
                       config["batch_size"], cfg.seed, device)
    return _fit_and_test(run, config, vocab, model, task, splits, cfg, device, resume=True)


def _checked_splits(run: Path, config: dict) -> dict[str, Captioned]:
    splits = load_splits(config["data"])
    refuse_changed_test_split(run, config, captioned_fingerprint(splits["test"]),
                              "the images or captions have")
    return splits


# ---- decoding and scoring ----------------------------------------------------------------------

def load_run(run: Path, device: torch.device) -> tuple[Captioner, dict, TokenVocab]:
    weights, meta, _ = load_checkpoint(checkpoint_path(run), device)
    config = meta["config"]
    model = Captioner(CaptionerConfig(**config["model"])).to(device)
    model.load_state_dict(weights)
    model.eval()
    return model, config, vocab_from_json(meta["vocab"])


@torch.no_grad()
def describe(model: Captioner, images: np.ndarray, beam: int, alpha: float, max_len: int,
             device: torch.device, batch_size: int = 128) -> list[list[int]]:
    """Caption ids (without <eos>) of each image (N, 3, S, S)."""
    model.eval()
    out: list[list[int]] = []
    for start in range(0, len(images), max(1, batch_size // beam)):
        x = torch.from_numpy(np.ascontiguousarray(images[start: start + batch_size // beam],
                                                  dtype=np.float32)).to(device)
        out += model.decoder.search(model.encode(x), len(x), beam, max_len, alpha)
    return out


@torch.no_grad()
def image_vectors(model: Captioner, images: np.ndarray, device: torch.device) -> Tensor:
    """The CNN's image vector f of each image, unit length (N, D)."""
    model.eval()
    parts = [model.encoder(torch.from_numpy(np.ascontiguousarray(images[i: i + 256],
                                                                dtype=np.float32)).to(device))[1]
             for i in range(0, len(images), 256)]
    return torch.nn.functional.normalize(torch.cat(parts).float(), dim=1)


def bleu_scores(hypotheses: Sequence[list[str]], references: Sequence[list[list[str]]]) -> dict:
    """Corpus BLEU-1..4 (sacrebleu, on space-joined lower-cased tokens; every image's references),
    and the rate of captions equal to one of their references."""
    import sacrebleu            # here, not at the top: only scoring needs it, and it loads slowly
    hyp = [" ".join(h) for h in hypotheses]
    most = max(len(r) for r in references)
    # sacrebleu takes one stream per reference; an image with fewer references repeats its first
    # (a duplicate reference changes neither the clipped counts nor the closest length).
    streams = [[" ".join(r[k] if k < len(r) else r[0]) for r in references] for k in range(most)]
    scores = {f"bleu_{n}": sacrebleu.metrics.BLEU(tokenize="none", max_ngram_order=n)
              .corpus_score(hyp, streams).score for n in range(1, 5)}
    scores["exact_match"] = sum(h in refs for h, refs in zip(hypotheses, references)) / len(hyp)
    return scores


def test_run(run: Path, model: Captioner, config: dict, vocab: TokenVocab, splits: dict,
             device: torch.device, beams: Sequence[int] = DEFAULT_BEAMS,
             alpha: Optional[float] = None) -> dict:
    """BLEU-1..4 and exact match of each decoding, and the nearest-neighbour baselines (test.json);
    attention.png shows where the model looked for each word of a few test captions."""
    d = config["data"]
    alpha = config["length_penalty"] if alpha is None else alpha
    train, test = splits["train"], splits["test"]
    references = [[caption_tokens(c) for c in refs] for refs in test.captions]
    result = {"split": "test", "images": len(test), "length_penalty": alpha, "decoding": {}}
    for beam in beams:
        hypotheses = [vocab.decode(ids) for ids in describe(model, test.images, beam, alpha,
                                                            d["max_output"], device)]
        scores = bleu_scores(hypotheses, references)
        if d["dataset"] == "shapes":        # unseen colour-shape combinations vs seen
            for tag in sorted(set(test.tags)):
                rows = [i for i, t in enumerate(test.tags) if t == tag]
                scores[f"exact_match_{tag}"] = sum(hypotheses[i] in references[i] for i in rows) / len(rows)
        result["decoding"]["greedy" if beam == 1 else f"beam_{beam}"] = scores
    # The baselines: the first caption of the nearest training image, by the CNN's image vector and
    # by raw pixels (cosine similarity of the flattened images).
    pixels = lambda images: torch.nn.functional.normalize(
        torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).flatten(1), dim=1)
    result["nearest_neighbour"] = {}
    for name, (a, b) in {"features": (image_vectors(model, test.images, device).cpu(),
                                      image_vectors(model, train.images, device).cpu()),
                         "pixels": (pixels(test.images), pixels(train.images))}.items():
        nearest = (a @ b.T).argmax(1).tolist()
        copied = [caption_tokens(train.captions[j][0]) for j in nearest]
        result["nearest_neighbour"][name] = bleu_scores(copied, references)
    write_json(run / "test.json", result)
    if model.decoder.attention is not None:
        caption_images(model, config, vocab, test.images[:4], 1, alpha, device,
                       plot=run / "attention.png")
    return result


def caption_images(model: Captioner, config: dict, vocab: TokenVocab, images: np.ndarray,
                   beam: int, alpha: float, device: torch.device,
                   plot: Optional[Path] = None) -> list[str]:
    outputs = describe(model, images, beam, alpha, config["data"]["max_output"], device)
    if plot is not None:
        if model.decoder.attention is None:
            raise UsageError("--plot-attention: this run was trained without attention")
        plot_caption_attention(plot, attention_maps(model, vocab, images[:4], outputs[:4], device))
    return [" ".join(vocab.decode(ids)) for ids in outputs]


@torch.no_grad()
def attention_maps(model: Captioner, vocab: TokenVocab, images: np.ndarray, outputs: list[list[int]],
                   device: torch.device) -> list[tuple[np.ndarray, list[str], np.ndarray]]:
    """Where the model looked for each word of each caption (a run with attention): the image
    (3, S, S), the caption's tokens ending in <eos>, and the weights (T, G, G), each step's G×G
    grid summing to 1 — from a teacher-forced pass over the decoded words, which gives the very
    weights the decoding used."""
    examples = []
    G = model.config.grid
    for image, ids in zip(images, outputs):
        targets = torch.tensor([ids + [TokenVocab.eos_id]], device=device)
        x = torch.from_numpy(np.ascontiguousarray(image[None], dtype=np.float32)).to(device)
        _, weights = model(x, teacher_inputs(targets, TokenVocab.go_id))     # (1, T, G²)
        examples.append((image, vocab.decode(targets[0].tolist()),
                         weights[0].view(-1, G, G).cpu().numpy()))              # (T, G, G)
    return examples


# ---- verbs on a trained run --------------------------------------------------------------------

def caption(args: argparse.Namespace) -> list[dict]:
    device = resolve_device(args.device)
    model, config, vocab = load_run(args.run_dir, device)
    if not args.images:
        raise UsageError("give one or more image files to caption")
    if args.beam < 1:
        raise UsageError(f"--beam must be at least 1, got {args.beam}")
    images = np.stack([load_image(path, config["data"]["image_size"]) for path in args.images])
    alpha = config["length_penalty"] if args.length_penalty is None else args.length_penalty
    captions = caption_images(model, config, vocab, images, args.beam, alpha, device,
                              plot=args.plot_attention)
    return [{"image": str(path), "caption": c} for path, c in zip(args.images, captions)]


def evaluate(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    model, config, vocab = load_run(args.run_dir, device)
    beams = args.beam or DEFAULT_BEAMS
    if min(beams) < 1:
        raise UsageError(f"--beam must be at least 1, got {min(beams)}")
    splits = _checked_splits(args.run_dir, config)
    return test_run(args.run_dir, model, config, vocab, splits, device, beams, args.length_penalty)
