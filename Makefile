# relais: the commands a user types. Everything runs from .venv, created by `make install`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-installed-stamp

.PHONY: install bench-install prereqs run up down status reset demo report test test-unit lint bench model proto proto-check clean certs screenshots

# The virtualenv, then the all-MiniLM-L6-v2 weights, hash-checked, into .relais/models, and the int8 ONNX graph
# written from them (.relais/models/onnx, named by the weights' sha256): each step a no-op once done.
install: $(STAMP)
	$(PY) -m relais.classifier.weights minilm
	$(PY) -m relais.classifier.model.onnx_encoder

# What the product and its tests need (about 1 GB): no torch, no GPU library.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[test,dev]'
	@touch $(STAMP)

# The heavy intent families for benchmarks and teachers (minilm, minilm-ft, mpnet-ft): the `embeddings` extra
# (torch with its CUDA wheels, about 5.5 GB more) and the mpnet-ft weights, hash-checked, into .relais/models.
bench-install: $(BENCH_STAMP)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e '.[test,embeddings,dev]'
	$(PY) -m relais.classifier.weights mpnet
	@touch $(BENCH_STAMP)

# Java, Maven and PostgreSQL for the local processes (apt-get when we can, instructions otherwise).
prereqs:
	@bash infra/prereqs.sh

run: install prereqs
	$(PY) -m infra.stack run

up: install prereqs
	$(PY) -m infra.stack up

down: install
	$(PY) -m infra.stack down

status: install
	$(PY) -m infra.stack status

# Empties the queues and the database of a stopped stack; keeps the Kafka jars and the models.
reset: install
	$(VENV)/bin/relais reset

demo: install
	$(VENV)/bin/relais demo

# The self-contained HTML analytics report of the running stack (make up first).
report: install
	$(VENV)/bin/relais report --out .relais/report.html

test: install prereqs
	$(PY) -m pytest

# docs/images/desk.png and wallboard.png: the web pages in headless Chromium, on a private stack (docs/web.md).
screenshots: install prereqs
	$(PY) -m infra.screenshots

# Figures, not assertions: public intent benchmarks, the catalogue's evaluation set, classifier speed,
# end-to-end pipeline throughput and latency on a private stack (bench/README.md), routing latency.
# First the checks of the heavy families (tests/heavy), which `make test` leaves out. Progress on stderr.
bench: bench-install
	$(PY) -m pytest tests/heavy -q
	$(PY) bench/intents_catalogue.py
	$(PY) bench/classifier_quick.py
	$(PY) bench/intents_public.py
	$(VENV)/bin/relais bench pipeline --private --json
	$(VENV)/bin/relais bench routing --json
	$(PY) bench/analytics_kpis.py
	$(PY) bench/assist_eval.py
	$(PY) bench/redact_speed.py

# The intent model artifact the classifier service loads (make up trains it when missing or stale).
model: install
	$(VENV)/bin/relais intents train

test-unit: install
	$(PY) -m pytest tests/unit

# Static checks, configured in pyproject.toml: ruff (lint and format) and mypy on relais (services/), infra, bench, tests.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

proto: install
	$(PY) proto/generate.py

proto-check: install
	$(PY) proto/generate.py --check

# A local CA and server/client certificates for TLS in .relais/certs/; prints the RELAIS_TLS_* lines to export.
certs: install
	$(PY) -m infra.certs.make_certs

clean: down
	rm -rf .relais
