"""The intent model: trained from the catalogue (or any labelled texts), with a calibrated confidence and an
explicit out-of-scope outcome.

Families (`IntentModel.train(catalogue, family=...)`, `relais intents train|eval --family ...`):

- "ngram" (DEFAULT_FAMILY, what the service runs): TF-IDF word 1-2 grams + character 2-5 grams and a
  logistic regression. About 20 µs a message in a batch, trains in about a second, French and English alike.
- "minilm-onnx": the ngram model averaged with two readers of all-MiniLM-L6-v2 run by ONNX Runtime in int8
  (onnx_encoder): a logistic regression over its six layers' pooled outputs and a nearest-neighbour vote on its
  sentence vectors. About a millisecond a message, trains in seconds; no torch.
- "minilm-student": the same members over a MiniLM distilled from "mpnet-ft" (distil, an offline step with torch)
  and served like "minilm-onnx" (student): the same cost a message, trains in seconds on the student it is given.
- "minilm": the same members on the numpy encoder, weighted for the public benchmarks (slower, no torch).
- "minilm-ft": "minilm" plus a copy of MiniLM fine-tuned on the training texts, read by its head and by its
  nearest training texts (torch to train, numpy to predict): minutes to train, milliseconds a message.
- "mpnet-ft" (BEST_FAMILY): "minilm-ft" plus all-mpnet-base-v2 with its top layers fine-tuned, read the same
  way (torch and transformers to train and to predict). The best on BANKING77, and the slowest.

Figures behind these choices: bench/intents_public.py (BANKING77, CLINC150), docs/classifier.md. The weights
are files relais.classifier.weights fetched (`make install`: MiniLM; `make bench-install`: mpnet); nothing is
downloaded at run time.

Modules, one concern each: text (what the model reads), out_of_scope (the "none of the above" class), ngram,
encoder (MiniLM in numpy), onnx_encoder (MiniLM as an ONNX graph, built from the weights and run by ONNX
Runtime), student (the distilled encoder file a model reads), neighbours, finetune (torch, imported only to
train), mpnet_tuned, ensemble (the families and the Classifier averaging their members), distil (the offline
teacher and student), calibration, persistence (the artifact file), intent_model (IntentModel, Prediction), errors.

Imports go one way, none back up: distil -> ensemble; intent_model -> ensemble -> members (mpnet_tuned -> finetune
-> neighbours -> encoder -> errors; student -> onnx_encoder -> encoder; ngram), and encoder, mpnet_tuned -> relais.classifier.weights (the
weights' folders), which imports nothing of the model. torch is imported inside finetune and mpnet_tuned only,
never to serve.
"""

# _EmbeddingKNN, _EmbeddingLR, _FineTuned, _Ngram: artifacts written while the model was one module pickled them
# as relais.classifier.model.<name>, and load as long as these names stay here.
from relais.classifier.model.calibration import stratified_holdout
from relais.classifier.model.encoder import (
    MAX_TOKENS,
    MINILM_SHA256,
    Encoder,
    layer_features,
    minilm_dir,
    pretrained_encoder,
)
from relais.classifier.model.ensemble import (
    BEST_FAMILY,
    DEFAULT_FAMILY,
    ENSEMBLES,
    FAMILIES,
    ONNX_FAMILIES,
    Classifier,
    _EmbeddingLR,
)
from relais.classifier.model.errors import ModelUnavailable
from relais.classifier.model.finetune import FINE_TUNE, _FineTuned, warmup_then_decay
from relais.classifier.model.intent_model import IntentModel, Prediction
from relais.classifier.model.neighbours import _EmbeddingKNN, head_and_neighbours
from relais.classifier.model.ngram import CHAR_WEIGHT, DEFAULT_C, _Ngram, build_pipeline
from relais.classifier.model.out_of_scope import BACKGROUND_EXAMPLES, OUT_OF_SCOPE_LABEL
from relais.classifier.model.persistence import ARTIFACT_FORMAT, catalogue_sha256
from relais.classifier.model.text import normalise_text

__all__ = [
    "ARTIFACT_FORMAT",
    "BACKGROUND_EXAMPLES",
    "BEST_FAMILY",
    "CHAR_WEIGHT",
    "DEFAULT_C",
    "DEFAULT_FAMILY",
    "ENSEMBLES",
    "FAMILIES",
    "FINE_TUNE",
    "MAX_TOKENS",
    "MINILM_SHA256",
    "ONNX_FAMILIES",
    "OUT_OF_SCOPE_LABEL",
    "Classifier",
    "Encoder",
    "IntentModel",
    "ModelUnavailable",
    "Prediction",
    "build_pipeline",
    "catalogue_sha256",
    "head_and_neighbours",
    "layer_features",
    "minilm_dir",
    "normalise_text",
    "pretrained_encoder",
    "stratified_holdout",
    "warmup_then_decay",
    "_EmbeddingKNN",
    "_EmbeddingLR",
    "_FineTuned",
    "_Ngram",
]
