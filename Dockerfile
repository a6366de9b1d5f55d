# One image for every relais service; docker-compose.yml picks the service by command:
#   python -m relais.<intake|classifier|bot|routing|analytics|lookup>
# and runs the one-shot setup with `python -m infra.postgres.migrate DSN` and `relais topics`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when the pins change.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code: services/ is the `relais` package (through the symlink relais -> services, as in the repository;
# removed once installed); infra/ stays in /app for `python -m infra.postgres.migrate` and infra/compose/healthcheck.py.
COPY proto/ proto/
COPY services/ services/
COPY infra/ infra/
RUN ln -s services relais \
    && pip install -c constraints.txt . \
    && rm -rf build *.egg-info relais
# The all-MiniLM-L6-v2 weights (hash-checked) and its int8 ONNX graph, for the minilm-onnx intent family.
ENV RELAIS_MINILM_DIR=/app/models/all-MiniLM-L6-v2 \
    RELAIS_ONNX_DIR=/app/models/onnx
RUN python -m relais.classifier.weights minilm && python -m relais.classifier.model.onnx_encoder
# The intent model, trained on the catalogue this image ships: the classifier refuses any other.
ENV RELAIS_INTENT_MODEL=/app/models/intents.pkl
RUN relais intents train --out /app/models/intents.pkl

RUN useradd --system --no-create-home --home-dir /app relais
USER relais

# No CMD: each compose service says which module it runs. Health: infra/compose/healthcheck.py <port>.
