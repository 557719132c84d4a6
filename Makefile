# Every target builds .venv from nothing when needed (a fresh machine has Python 3 and pip only).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-slow bench bench-word2vec gradcheck clean chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -c 'from rnnkit import kernels; print(kernels.build())'   # for this CPU (else at first use)
	touch $(STAMP)

# The main job on its bundled default: a character-level LSTM trained on Shakespeare for at most
# five minutes, then a sample. Each demo writes a fresh run directory; nothing earlier is touched.
demo: $(STAMP)
	@run=runs/demo-$$(date +%Y%m%d-%H%M%S); \
	$(VENV)/bin/rnnkit train lm --dataset shakespeare --minutes 5 --out $$run && \
	$(VENV)/bin/rnnkit sample $$run --prime "ROMEO:" --length 800 --temperature 0.7 --seed 1

# The browser test (tests/test_serve_browser.py) drives Debian's headless chromium: installed here
# when missing and we are root, else that test is skipped. A failed install fails nothing by itself.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	    || echo "make: could not install chromium: the browser test will be skipped"; \
	else echo "make: no /usr/bin/chromium (apt-get install chromium, as root): the browser test will be skipped"; fi

test: $(STAMP) chromium
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# Speed as ratios against torch.nn in the same process; run nothing else meanwhile (2 cores).
bench: $(STAMP)
	$(VENV)/bin/rnnkit bench
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
