"""``rnnkit <verb> [task]``: train, sample, predict, forecast, generate, translate, tag, caption,
similar, analogy, export, plot-words, bias, eval, serve, gradcheck, bench, lab.

Every verb that takes a RUN_DIR reads the run's ``config.json`` to find which task made it. Bad
input is reported as one line ``rnnkit: error: …`` with exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import sys
from pathlib import Path
from typing import Optional

from .data.abc_midi import abc_to_midi
from .data.errors import DataError
from .lab import gradients, inside, memory
from .serve import serve
from .tasks import caption, classify, forecast, lm, markov, tag, translate, word2vec
from .tasks.common import UsageError, default_run_dir, read_run_config, resolve_device
from .train import distributed
from .train.checkpoint import CheckpointError
from .train.trainer import NonFiniteError

# Tasks that do not train by gradient steps through the shared trainer, and why.
SINGLE_PROCESS_TASKS = {
    "markov": "a Markov chain is counted, not trained by gradient steps: one process does it",
    "word2vec": "word2vec trains with --threads (lock-free updates in one process), not with "
                "data-parallel processes",
}
TRAIN_TASKS = {"lm": lm, "markov": markov, "classify": classify, "forecast": forecast,
               "word2vec": word2vec, "translate": translate, "tag": tag, "caption": caption}


# Verbs whose last positional is a list: its name and the type of its items.
TRAILING = {"predict": ("texts", str), "translate": ("texts", str), "tag": ("texts", str),
            "caption": ("images", Path)}


def _run_task(run_dir: Path):
    if Path(run_dir).is_file():                  # a word-vectors file stands in for a word2vec run
        return word2vec
    task = read_run_config(run_dir).get("task")
    if task not in TRAIN_TASKS:
        raise UsageError(f"{run_dir}: unknown task {task!r} in config.json")
    return TRAIN_TASKS[task]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnkit", description=__doc__.split("\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    train = verbs.add_parser("train", help="train a model into a run directory")
    tasks = train.add_subparsers(dest="task", required=True, metavar="TASK")
    for name, module in TRAIN_TASKS.items():
        module.add_train_arguments(tasks.add_parser(name, help=module.__doc__.split("\n")[0]))

    s = verbs.add_parser("sample", help="generate text from a trained run, streamed as it comes")
    s.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    s.add_argument("--prime", default="\n", help="text the model reads before generating")
    s.add_argument("--length", type=int, default=1000, help="symbols to generate")
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--top-k", type=int)
    s.add_argument("--top-p", type=float)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.add_argument("--play", action="store_true",
                   help="markov runs: write a structured play (acts, scenes, casts, exits)")
    s.add_argument("--midi", type=Path, metavar="FILE",
                   help="folk-tunes runs: also write the generated ABC to a MIDI file")

    p = verbs.add_parser("predict", help="classify texts (or sequences) with a trained classifier")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    p.add_argument("--file", type=Path, help="one text per line (series models: an NPZ or CSV)")
    p.add_argument("--json", action="store_true", help="one JSON object per input")
    p.add_argument("--device", default="auto")

    f = verbs.add_parser("forecast", help="continue a series with a trained forecaster")
    f.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    f.add_argument("--horizon", type=int, help="steps to forecast (default: the run's)")
    f.add_argument("--origin", help="forecast from this step index or timestamp "
                                    "(default: after the end of the data)")
    f.add_argument("--plot", type=Path, metavar="PNG", help="plot history, forecast and interval")
    f.add_argument("--history", type=int, help="steps of history in the plot")
    f.add_argument("--json", action="store_true")
    f.add_argument("--device", default="auto")

    gen = verbs.add_parser("generate", help="let a forecaster run on its own predictions")
    gen.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    gen.add_argument("--steps", type=int, default=200)
    gen.add_argument("--seed-with", choices=("zeros", "data"), default="data",
                     help="the window the model reads first: zeros, or the series from --start")
    gen.add_argument("--start", type=int, help="--seed-with data: the seed's first step (default 0)")
    gen.add_argument("--plot", type=Path, metavar="PNG")
    gen.add_argument("--json", action="store_true")
    gen.add_argument("--device", default="auto")

    tr = verbs.add_parser("translate", help="translate sentences with a trained encoder–decoder")
    tr.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    tr.add_argument("texts", nargs="*", metavar="SENTENCE")
    tr.add_argument("--file", type=Path, help="one sentence per line")
    tr.add_argument("--beam", type=int, default=1, help="beam width (1: greedy)")
    tr.add_argument("--length-penalty", type=float, help="beam search α (default: the run's)")
    tr.add_argument("--plot-attention", type=Path, metavar="PNG",
                    help="attention heat maps of the (first six) translations")
    tr.add_argument("--json", action="store_true", help="one JSON object per sentence")
    tr.add_argument("--device", default="auto")

    tg = verbs.add_parser("tag", help="tag the words of sentences with a trained tagger")
    tg.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    tg.add_argument("texts", nargs="*", metavar="SENTENCE")
    tg.add_argument("--file", type=Path, help="one sentence per line")
    tg.add_argument("--json", action="store_true", help="one JSON object per sentence")
    tg.add_argument("--device", default="auto")

    cp = verbs.add_parser("caption", help="describe images with a trained captioner")
    cp.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    cp.add_argument("images", nargs="*", type=Path, metavar="IMAGE")
    cp.add_argument("--beam", type=int, default=1, help="beam width (1: greedy)")
    cp.add_argument("--length-penalty", type=float, help="beam search α (default: the run's)")
    cp.add_argument("--plot-attention", type=Path, metavar="PNG",
                    help="where the model looked for each word (first four images)")
    cp.add_argument("--json", action="store_true", help="one JSON object per image")
    cp.add_argument("--device", default="auto")

    sim = verbs.add_parser("similar", help="nearest words by cosine similarity")
    sim.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a word2vec run or a vectors file")
    sim.add_argument("word")
    sim.add_argument("-n", type=int, default=10)
    sim.add_argument("--json", action="store_true")

    an = verbs.add_parser("analogy", help="A − B + C: what is to C as A is to B (king man woman)")
    an.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a word2vec run or a vectors file")
    an.add_argument("plus", metavar="A")
    an.add_argument("minus", metavar="B")
    an.add_argument("plus2", metavar="C")
    an.add_argument("--method", choices=("add", "mul"), default="add", help="3CosAdd or 3CosMul")
    an.add_argument("-n", type=int, default=5)
    an.add_argument("--json", action="store_true")

    ex = verbs.add_parser("export", help="write a word2vec run's vectors in word2vec's format")
    ex.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    ex.add_argument("output", type=Path, metavar="FILE")
    ex.add_argument("--binary", action="store_true", help="the binary format (default: text)")

    pw = verbs.add_parser("plot-words", help="a 2-D map (PCA) of chosen word vectors")
    pw.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a word2vec run or a vectors file")
    pw.add_argument("words", nargs="+", metavar="WORD")
    pw.add_argument("--out", type=Path, required=True, metavar="PNG")

    bi = verbs.add_parser("bias", help="association bias of word vectors (WEAT effect size)")
    bi.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a word2vec run or a vectors file")
    bi.add_argument("--words", type=Path, required=True, metavar="FILE",
                    help="lines 'X: ...', 'Y: ...' (targets) and 'A: ...', 'B: ...' (attributes)")

    e = verbs.add_parser("eval", help="evaluate a trained run; --json prints one JSON object")
    e.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    e.add_argument("--text", nargs="+", metavar="FILE", help="evaluate on these files instead")
    e.add_argument("--horizon", type=int, help="forecast runs: steps per forecast (default: the run's)")
    e.add_argument("--analogies", type=Path, metavar="FILE",
                   help="word2vec: questions-words format (default: the file bundled with gensim)")
    e.add_argument("--similarity", nargs="+", metavar="FILE",
                   help="word2vec: word-pair files 'w1 w2 score' (default: WordSim-353)")
    e.add_argument("--restrict-vocab", type=int, default=300_000,
                   help="word2vec analogies: search the N most frequent words (gensim's default)")
    e.add_argument("--beam", type=int, nargs="+",
                   help="translate / caption runs: beam widths to score (1: greedy; default 1 5 / 1 3)")
    e.add_argument("--length-penalty", type=float, help="translate / caption runs: beam search α")
    e.add_argument("--json", action="store_true")
    e.add_argument("--device", default="auto")

    sv = verbs.add_parser("serve", help="a local web playground: sample and see inside a language "
                                        "model, or translation / caption attention")
    sv.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    sv.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=8000, help="0: any free port")
    sv.add_argument("--device", default="auto")
    sv.add_argument("--max-concurrent", type=int, default=2,
                    help="generations at once; more are refused with 429")
    sv.add_argument("--max-length", type=int, default=2000, help="symbols one sample may ask for")
    sv.add_argument("--timeout", type=float, default=30.0,
                    help="seconds a sample stream may run before it is ended")

    g = verbs.add_parser("gradcheck", help="NumPy BPTT vs finite differences vs torch autograd")
    g.add_argument("--json", action="store_true")

    bn = verbs.add_parser("bench", help="every rnnkit layer against torch.nn, timed in one process")
    bn.add_argument("--quick", action="store_true", help="one shape, three rounds")
    bn.add_argument("--rounds", type=int, default=5, help="alternating rounds per measurement")
    bn.add_argument("--json", action="store_true")

    lab = verbs.add_parser("lab", help="see inside: vanishing gradients, memory tasks, gates, neurons")
    experiments = lab.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    memory.add_arguments(experiments.add_parser(
        "memory", help="the adding, copy and parity tasks: which cells solve them at length T"))
    gradients.add_arguments(experiments.add_parser(
        "gradients", help="‖∂loss/∂h_t‖ against the distance to the loss, per cell (vanishing "
                          "gradients), at initialisation and after training"))
    inside.add_arguments(experiments.add_parser(
        "gates", help="gate saturation per layer and forget-gate histograms of a trained run"),
        viewer=False)
    inside.add_arguments(experiments.add_parser(
        "neurons", help="an HTML page of the text coloured by single hidden units, and the units "
                        "that track quotes, brackets, speaker names, line position"), viewer=True)
    return parser


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep the memory a process frees for its next allocations.

    Training allocates the same large buffers at every step (a 2×512 LSTM's activations and
    gradients: tens of MB each). glibc serves each block of 32 MB or more from a fresh mmap, which
    the kernel page-faults in and zero-fills on first touch, and gives it back when freed; from the
    heap instead (no mmap, no trimming) the next step reuses the same pages. Measured on the 2-core
    CPU: a 2×512 LSTM language model's training step 12–20 % faster (fused and bptt alike).
    Process-wide, so the command line does it for its own process only (``main`` with no argv);
    returns whether it took effect (glibc only).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:                         # musl or another C library: leave it alone
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4   # glibc's <malloc.h>
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))


def main(argv: Optional[list[str]] = None) -> int:
    if argv is None:                        # the `rnnkit` process itself, not a caller's
        keep_freed_memory()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse gives a trailing positional list (`translate RUN --beam 5 "text"`) nothing once an
    # option has come between; those words are the texts (or the image files).
    trailing = TRAILING.get(args.verb)
    if extra and trailing and not any(x.startswith("-") for x in extra):
        name, kind = trailing
        setattr(args, name, list(getattr(args, name)) + [kind(x) for x in extra])
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.verb == "train":
            return _train(args, sys.argv[1:] if argv is None else argv)
        return _dispatch(args)
    except distributed.WorkerDone:  # ranks > 0 after training: the test and reports are rank 0's
        return 0
    except BrokenPipeError:       # `rnnkit sample ... | head`; before OSError, its base class
        sys.stderr.close()
        return 0
    except (UsageError, DataError, CheckpointError, NonFiniteError, ValueError, OSError) as e:
        print(f"rnnkit: error: {e}", file=sys.stderr)     # one line, no traceback
        return 2
    except KeyboardInterrupt:
        return 130


def _train(args: argparse.Namespace, argv: list[str]) -> int:
    """``rnnkit train``: in this process, or in ``--nproc`` data-parallel ones (torchrun)."""
    nproc = getattr(args, "nproc", 1)            # markov and word2vec have no --nproc
    if nproc < 1:
        raise UsageError(f"--nproc must be at least 1, got {nproc}")
    if nproc > 1 and not distributed.launched():
        argv = distributed.without_nproc(argv)
        if args.out is None and args.resume is None:      # every rank must name the same directory
            argv += ["--out", str(default_run_dir(args.task))]
        return distributed.launch(nproc, argv)
    if distributed.launched():
        if args.task in SINGLE_PROCESS_TASKS:
            raise UsageError(f"torchrun: {SINGLE_PROCESS_TASKS[args.task]}")
        distributed.init(resolve_device(args.device))
    distributed.allow_reshard(getattr(args, "reshard", False))
    try:
        TRAIN_TASKS[args.task].train(args)
    finally:
        distributed.finish()
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.verb == "sample":
        pieces = []
        module = _run_task(args.run_dir)
        if not hasattr(module, "sample"):
            raise UsageError(f"{args.run_dir} is a {module.TASK!r} run: sample needs a language "
                             f"model or a Markov run")
        for piece in module.sample(args):
            sys.stdout.write(piece)
            sys.stdout.flush()
            pieces.append(piece)
        sys.stdout.write("\n")
        if args.midi:
            report = abc_to_midi("".join(pieces), args.midi)
            print(f"rnnkit: wrote {args.midi}: {json.dumps(report)}", file=sys.stderr)
        return 0
    if args.verb == "predict":
        module = _run_task(args.run_dir)
        if not hasattr(module, "predict"):
            raise UsageError(f"{args.run_dir} is not a classifier run: predict needs one")
        for row in module.predict(args):
            if args.json:
                print(json.dumps(row, ensure_ascii=False))
            else:
                probs = "  ".join(f"{c} {p:.3f}" for c, p in row["probabilities"].items())
                print(f"{row['label']}\t{probs}\t{row['input']}")
        return 0
    if args.verb in ("forecast", "generate"):
        module = _run_task(args.run_dir)
        if module is not forecast:
            raise UsageError(f"{args.run_dir} is a {module.TASK!r} run: {args.verb} needs a forecast run")
        result = getattr(forecast, args.verb)(args)
        if args.json:
            print(json.dumps(result))
        elif args.verb == "generate":
            print("\n".join(f"{v:.6g}" for v in result["generated"]))
        else:
            for i, v in enumerate(result["mean"]):
                when = result["timestamps"][i] if result["timestamps"] else result["origin"] + i
                cols = [str(when), f"{v:.6g}"]
                if "lower" in result:
                    cols += [f"{result['lower'][i]:.6g}", f"{result['upper'][i]:.6g}"]
                if i < len(result.get("actual", [])):
                    cols.append(f"actual {result['actual'][i]:.6g}")
                print("\t".join(cols))
        if args.plot:
            print(f"rnnkit: wrote {args.plot}", file=sys.stderr)
        return 0
    if args.verb == "translate":
        module = _run_task(args.run_dir)
        if module is not translate:
            raise UsageError(f"{args.run_dir} is a {module.TASK!r} run: translate needs a translate run")
        for row in translate.translate(args):
            print(json.dumps(row, ensure_ascii=False) if args.json else row["translation"])
            if row["unknown"] and not args.json:
                print(f"rnnkit: unknown words (read as <unk>): {' '.join(row['unknown'])}",
                      file=sys.stderr)
        if args.plot_attention:
            print(f"rnnkit: wrote {args.plot_attention}", file=sys.stderr)
        return 0
    if args.verb == "tag":
        module = _run_task(args.run_dir)
        if module is not tag:
            raise UsageError(f"{args.run_dir} is a {module.TASK!r} run: tag needs a tagging run")
        for row in tag.tag(args):
            if args.json:
                print(json.dumps(row, ensure_ascii=False))
                continue
            print(" ".join(f"{w}/{t}" for w, t in zip(row["tokens"], row["tags"])))
            if row["entities"]:
                print("  " + "; ".join(f"{e['type']}: {e['text']}" for e in row["entities"]))
        return 0
    if args.verb == "caption":
        module = _run_task(args.run_dir)
        if module is not caption:
            raise UsageError(f"{args.run_dir} is a {module.TASK!r} run: caption needs a caption run")
        for row in caption.caption(args):
            print(json.dumps(row, ensure_ascii=False) if args.json else
                  f"{row['image']}\t{row['caption']}")
        if args.plot_attention:
            print(f"rnnkit: wrote {args.plot_attention}", file=sys.stderr)
        return 0
    if args.verb in ("similar", "analogy", "export", "plot-words", "bias"):
        module = _run_task(args.run_dir)
        if module is not word2vec:
            raise UsageError(f"{args.run_dir} is a {module.TASK!r} run: {args.verb} needs word vectors")
        result = getattr(word2vec, args.verb.replace("-", "_"))(args)
        if args.verb in ("export", "plot-words", "bias") or args.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            for row in result:
                print(f"{row['word']}\t{row.get('similarity', row.get('score')):.4f}")
        return 0
    if args.verb == "eval":
        result = _run_task(args.run_dir).evaluate(args)
        if args.json:
            print(json.dumps(result))
        else:
            _print_flat(result)
        return 0
    if args.verb == "lab":
        return _lab(args)
    if args.verb == "serve":
        return serve(args)
    if args.verb == "bench":
        from .bench import main as bench
        if args.rounds <= 0:
            raise SystemExit(f"rnnkit bench: --rounds must be positive, got {args.rounds}")
        bench(args.quick, args.json, args.rounds)
        return 0
    if args.verb == "gradcheck":
        from .gradcheck import format_gradcheck, run_gradcheck
        rows = run_gradcheck()
        print(json.dumps(rows) if args.json else format_gradcheck(rows))
        return 0 if all(r["ok"] for r in rows) else 1
    raise AssertionError(args.verb)


def _lab(args: argparse.Namespace) -> int:
    if args.experiment == "memory":
        table = memory.memory(args)
        print(json.dumps(table) if args.json else memory.format_table(table))
        return 0
    if args.experiment == "gradients":
        result = gradients.gradients(args)
        print(json.dumps(result) if args.json else gradients.format_profiles(result))
        return 0
    if args.experiment in ("gates", "neurons"):
        result = getattr(inside, args.experiment)(args)
        formatted = inside.format_gates if args.experiment == "gates" else inside.format_rankings
        print(json.dumps(result) if args.json else formatted(result))
        return 0
    raise AssertionError(args.experiment)


def _print_flat(result: dict, prefix: str = "") -> None:
    """``key: value`` lines; nested objects as ``outer.inner: value``."""
    for k, v in result.items():
        if isinstance(v, dict):
            _print_flat(v, f"{prefix}{k}.")
        else:
            print(f"{prefix}{k}: {v:.4f}" if isinstance(v, float) else f"{prefix}{k}: {v}")


if __name__ == "__main__":
    sys.exit(main())
