# Every target builds .venv from nothing when needed (a fresh machine has Python 3 and pip only).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-slow bench bench-word2vec gradcheck clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The main job on its bundled default: a character-level LSTM trained on Shakespeare for at most
# five minutes, then a sample. Each demo writes a fresh run directory; nothing earlier is touched.
demo: $(STAMP)
	@run=runs/demo-$$(date +%Y%m%d-%H%M%S); \
	$(VENV)/bin/rnnkit train lm --dataset shakespeare --minutes 5 --out $$run && \
	$(VENV)/bin/rnnkit sample $$run --prime "ROMEO:" --length 800 --temperature 0.7 --seed 1

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# Speed as ratios against torch.nn in the same process; run nothing else meanwhile (2 cores).
bench: $(STAMP)
	$(PY) benchmarks/lm_throughput.py
	$(PY) benchmarks/lm_throughput.py --precision bf16

# word2vec beside gensim (same corpus, settings and threads); installs gensim, the `bench` extra.
bench-word2vec: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/word2vec_vs_gensim.py

gradcheck: $(STAMP)
	$(VENV)/bin/rnnkit gradcheck

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
