"""all-MiniLM-L6-v2 in ONNX Runtime, int8, without torch: the graph is written from the safetensors weights with
onnx's helper API, cached as a file under .relais/models, and run by OnnxEncoder (what the `minilm-onnx` family
reads: each layer's mean-pooled output, as Encoder.encode computes in numpy).

The graph is BERT as Encoder._forward runs it: embeddings and LayerNorm, six layers of attention (the padding mask
as a -1e4 bias), residuals and LayerNorms, and a GELU (erf) feed-forward; its output is each layer's mean over the
message's tokens. Quantised, every matrix product is int8: weights per output column (7 bits, WEIGHT_LEVELS),
activations per token (a scale from each token's own largest value), so that a message's encoding never depends on
the other messages of its batch (onnxruntime's dynamic quantisation takes one scale for the whole batch). The word
embeddings are int8 too, one scale per row. About 23 MB.

`python -m relais.classifier.model.onnx_encoder` (run by `make install`) builds the file once; it is rebuilt when
missing, as its name carries the weights' sha256 and GRAPH_VERSION. Building needs the onnx package; serving only
onnxruntime and tokenizers.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from relais.classifier.model.encoder import _HEADS, _LAYERS, _WIDTH, _pretrained, _tokenizer, minilm_dir
from relais.classifier.model.errors import ModelUnavailable
from relais.classifier.weights import MINILM_SHA256

GRAPH_VERSION = 2  # bump when the graph changes: the cached file's name changes with it
OPSET = 21  # QuantizeLinear's output_dtype, Gelu
THREADS = 2  # batches are split across this many threads of one single-threaded session
_FFN = 4 * _WIDTH


def onnx_dir() -> Path:
    return Path(os.environ.get("RELAIS_ONNX_DIR") or ".relais/models/onnx")


def encoder_path(quantised: bool = True) -> Path:
    kind = "int8" if quantised else "fp32"
    return onnx_dir() / f"all-MiniLM-L6-v2-{MINILM_SHA256[:16]}-g{GRAPH_VERSION}-{kind}.onnx"


# ----------------------------------------------------------------------------------------------- the graph


class _Graph:
    """Nodes and initialisers in the making, with unique names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initialisers: list[Any] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: np.ndarray | np.generic) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initialisers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, **attributes: Any) -> str:
        from onnx import helper

        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attributes))
        return out


# Weights in 7 bits: a CPU without VNNI (AVX2 alone) multiplies uint8 by int8 in pairs summed into int16, which
# saturates beyond 255 x 127 x 2 (an int8 graph read MiniLM at cosine 0.980 there); 255 x 63 x 2 fits.
WEIGHT_LEVELS = 63


def _quantised_columns(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 weights (in, out) symmetric per output column, in [-63, 63], and the column scales."""
    scale = np.maximum(np.abs(weight).max(0), 1e-12) / WEIGHT_LEVELS
    return np.clip(np.round(weight / scale), -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int8), scale.astype(np.float32)


def _linear(g: _Graph, x: str, weight: np.ndarray, bias: np.ndarray, quantised: bool) -> str:
    """x @ weight + bias, x (tokens, in), weight (in, out). Quantised: each token (row of x) to uint8 around 128
    with its own scale, int8 weights with a scale per column; the product in int32, scaled back to float.
    (uint8 x int8 is onnxruntime's fast integer product on x86; int8 x int8 is 15x slower.)"""
    if not quantised:
        return g.op("Add", g.op("MatMul", x, g.const("w", weight.astype(np.float32))), g.const("b", bias))
    weight_q, column_scale = _quantised_columns(weight)
    largest = g.op("ReduceMax", g.op("Abs", x), g.const("axes", np.array([1])), keepdims=0)
    token_scale = g.op(
        "Max", g.op("Mul", largest, g.const("inv127", np.float32(1 / 127))), g.const("tiny", np.float32(1e-12))
    )
    zero = g.op("Expand", g.const("zero", np.array([128], dtype=np.uint8)), g.op("Shape", token_scale))
    x_q = g.op("QuantizeLinear", x, token_scale, zero, axis=0)  # uint8 in [1, 255], one scale per row
    product = g.op(
        "MatMulIntegerToFloat",
        x_q,
        g.const("wq", weight_q),
        g.const("one", np.float32(1)),
        g.const("ws", column_scale),
        g.const("zp", np.uint8(128)),
        domain="com.microsoft",
    )
    rows = g.op("Unsqueeze", token_scale, g.const("axes", np.array([1])))
    return g.op("Add", g.op("Mul", product, rows), g.const("b", bias))


def _layer_norm(g: _Graph, x: str, weight: np.ndarray, bias: np.ndarray) -> str:
    return g.op("LayerNormalization", x, g.const("ln_w", weight), g.const("ln_b", bias), axis=-1, epsilon=1e-12)


def build_graph(weights: Mapping[str, np.ndarray], quantised: bool = True) -> Any:
    """The encoder as an onnx ModelProto: inputs input_ids and attention_mask (batch, length) int64, output
    `pooled` (batch, 6, 384): each layer's output averaged over the tokens the mask keeps. Between layers the
    activations are (batch x length, 384): one row per token."""
    from onnx import TensorProto, helper

    w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    g = _Graph()
    # embeddings: word (int8 rows with a scale each, when quantised) + position + token type 0, then LayerNorm
    words = w["embeddings.word_embeddings.weight"]
    if quantised:
        row_scale = np.maximum(np.abs(words).max(1), 1e-12) / 127
        table = np.clip(np.round(words / row_scale[:, None]), -127, 127).astype(np.int8)
        gathered = g.op("Cast", g.op("Gather", g.const("words_q", table), "input_ids"), to=1)
        scales = g.op("Gather", g.const("words_s", row_scale.astype(np.float32)[:, None]), "input_ids")
        embedded = g.op("Mul", gathered, scales)
    else:
        embedded = g.op("Gather", g.const("words", words), "input_ids")
    length = g.op("Shape", "input_ids", start=1, end=2)
    positions = g.op(
        "Slice",
        g.const("positions", w["embeddings.position_embeddings.weight"]),
        g.const("start", np.array([0])),
        length,
        g.const("axis", np.array([0])),
    )
    embedded = g.op(
        "Add", g.op("Add", embedded, positions), g.const("type0", w["embeddings.token_type_embeddings.weight"][0])
    )
    tokens_shape = g.const("tokens", np.array([-1, _WIDTH]))
    x = _layer_norm(
        g, g.op("Reshape", embedded, tokens_shape), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"]
    )
    # the mask: a -1e4 bias on padded keys (batch, 1, 1, length), and the pooling weights (batch, 1, length)
    mask = g.op("Cast", "attention_mask", to=1)
    key_bias = g.op(
        "Unsqueeze",
        g.op("Mul", g.op("Sub", g.const("one", np.float32(1)), mask), g.const("minus", np.float32(-1e4))),
        g.const("axes", np.array([1, 2])),
    )
    pool = g.op(
        "Unsqueeze",
        g.op("Div", mask, g.op("ReduceSum", mask, g.const("axes", np.array([-1])), keepdims=1)),
        g.const("axes", np.array([1])),
    )
    head = _WIDTH // _HEADS
    heads_shape = g.op(
        "Concat", g.const("batch", np.array([-1])), length, g.const("heads", np.array([_HEADS, head])), axis=0
    )
    batch_shape = g.op("Concat", g.const("batch", np.array([-1])), length, g.const("width", np.array([_WIDTH])), axis=0)
    pooled = []
    for i in range(_LAYERS):
        p = f"encoder.layer.{i}."
        # queries pre-scaled by 1/sqrt(head width), folded into their weights
        scale = np.float32(1 / np.sqrt(head))
        qkv_w = np.concatenate(
            [
                w[p + "attention.self.query.weight"] * scale,
                w[p + "attention.self.key.weight"],
                w[p + "attention.self.value.weight"],
            ]
        ).T
        qkv_b = np.concatenate(
            [
                w[p + "attention.self.query.bias"] * scale,
                w[p + "attention.self.key.bias"],
                w[p + "attention.self.value.bias"],
            ]
        )
        qkv = _linear(g, x, qkv_w, qkv_b, quantised)
        q, k, v = (g.name("q"), g.name("k"), g.name("v"))
        g.nodes.append(helper.make_node("Split", [qkv, g.const("sizes", np.array([_WIDTH] * 3))], [q, k, v], axis=-1))
        q, k, v = (g.op("Reshape", t, heads_shape) for t in (q, k, v))  # (batch, length, heads, head)
        scores = g.op(
            "Add",
            g.op("MatMul", g.op("Transpose", q, perm=[0, 2, 1, 3]), g.op("Transpose", k, perm=[0, 2, 3, 1])),
            key_bias,
        )
        attended = g.op("MatMul", g.op("Softmax", scores, axis=-1), g.op("Transpose", v, perm=[0, 2, 1, 3]))
        attended = g.op("Reshape", g.op("Transpose", attended, perm=[0, 2, 1, 3]), tokens_shape)
        out = _linear(
            g, attended, w[p + "attention.output.dense.weight"].T, w[p + "attention.output.dense.bias"], quantised
        )
        x = _layer_norm(
            g, g.op("Add", x, out), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]
        )
        hidden = _linear(g, x, w[p + "intermediate.dense.weight"].T, w[p + "intermediate.dense.bias"], quantised)
        hidden = g.op("Gelu", hidden)  # the erf form, as BERT was trained
        out = _linear(g, hidden, w[p + "output.dense.weight"].T, w[p + "output.dense.bias"], quantised)
        x = _layer_norm(g, g.op("Add", x, out), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        pooled.append(g.op("MatMul", pool, g.op("Reshape", x, batch_shape)))  # (batch, 1, width)
    g.nodes.append(helper.make_node("Concat", pooled, ["pooled"], axis=1))
    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2-pooled",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "length"]),
        ],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", _LAYERS, _WIDTH])],
        g.initialisers,
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="relais")
    model.ir_version = 10  # opset 21
    return model


def build(quantised: bool = True, path: Path | None = None, weights: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write the encoder file from the pretrained weights, or `weights` of the same shapes (a fine-tuned MiniLM), in a
    few seconds, atomically; returns its path."""
    import onnx

    path = path or encoder_path(quantised)
    started = time.perf_counter()
    print(f"building the MiniLM encoder for ONNX Runtime ({path})", file=sys.stderr, flush=True)
    model = build_graph(weights if weights is not None else _pretrained()[0], quantised)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(path)  # a reader never sees half a file
    print(f"built in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return path


def ensure_built(quantised: bool = True) -> Path:
    """The encoder file, built on first need."""
    path = encoder_path(quantised)
    if not path.is_file():
        try:
            build(quantised, path)
        except ImportError:
            raise ModelUnavailable("building the MiniLM encoder needs the onnx package: `make install`") from None
    return path


# ----------------------------------------------------------------------------------------------- serving


class OnnxEncoder:
    """The encoder file run by ONNX Runtime: encode() gives (texts, 6, 384) as Encoder.encode does.

    One session, one thread per run; a batch is cut into groups of messages of the same number of tokens (no
    padding: less work, and a message's encoding is the same alone or in any batch), run on THREADS threads.
    """

    def __init__(self, path: Path, threads: int = THREADS):
        try:
            import onnxruntime
        except ImportError:
            raise ModelUnavailable("the minilm-onnx family needs onnxruntime: `make install`") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._tokenizer = _tokenizer((minilm_dir() / "tokenizer.json").read_text(encoding="utf-8"))
        self._threads = threads
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    def _run(self, ids: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        ids = self.token_ids(texts)
        out = np.zeros((len(ids), _LAYERS, _WIDTH), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for row, tokens in enumerate(ids):
            by_length.setdefault(len(tokens), []).append(row)
        groups = [
            rows[start : start + batch_size] for rows in by_length.values() for start in range(0, len(rows), batch_size)
        ]
        batches = [np.array([ids[r] for r in rows], dtype=np.int64) for rows in groups]
        if len(batches) > 1 and self._threads > 1:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self._threads, thread_name_prefix="minilm-onnx")
            results = list(self._pool.map(self._run, batches))
        else:
            results = [self._run(b) for b in batches]
        for rows, pooled in zip(groups, results):
            out[rows] = pooled
        return out


@functools.lru_cache(maxsize=1)
def onnx_encoder() -> OnnxEncoder:
    """The int8 encoder, loaded once per process (built first if missing)."""
    return OnnxEncoder(ensure_built())


if __name__ == "__main__":
    print(ensure_built(), file=sys.stderr)
