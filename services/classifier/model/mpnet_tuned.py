"""all-mpnet-base-v2 with its top layers fine-tuned: the strongest member of the `mpnet-ft` family (benchmark
only; torch and transformers, imported when it trains or predicts).

The bottom `frozen_layers` of the 12 are kept as they are and run once per batch (cached), the top ones and a
cosine head are fine-tuned together (cross-entropy with label smoothing, AdamW, warm-up then linear decay),
like MiniLM in finetune._fine_tune; a third of the cost of a full fine-tune on two cores, and on a BANKING77 fold
93.5 % alone (head and neighbours), against 93.2 % for the whole minilm-ft ensemble. The weights are the ones
relais.classifier.weights fetched.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from relais.classifier.model.errors import ModelUnavailable
from relais.classifier.model.finetune import _deterministic, warmup_then_decay
from relais.classifier.model.neighbours import _EmbeddingKNN, head_and_neighbours
from relais.classifier.weights import MPNET

WIDTH, LAYERS = 768, 12
TUNE = MappingProxyType(
    {
        "frozen_layers": 8,
        "epochs": 3,
        "batch": 32,
        "lr": 5e-5,
        "head_lr": 2e-3,
        "label_smoothing": 0.1,
        "scale": 20.0,
        "max_tokens": 64,
        "warmup": 0.1,
        "weight_decay": 0.01,
    }
)


@functools.lru_cache(maxsize=1)
def _base() -> tuple[Any, Any]:
    """The pretrained tokenizer and model (frozen, eval mode), loaded once per process."""
    folder = MPNET.folder()
    if not MPNET.fetched(folder):
        raise ModelUnavailable(
            f"all-mpnet-base-v2 is not in {folder}: run `make bench-install` "
            "(or python -m relais.classifier.weights mpnet), or set RELAIS_MPNET_DIR"
        )
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        raise ModelUnavailable(
            "the mpnet-ft family needs torch and transformers: `make bench-install` (the embeddings extra)"
        ) from None
    model = AutoModel.from_pretrained(folder).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return AutoTokenizer.from_pretrained(folder), model


class MpnetTuned:
    """The top layers fine-tuned with a cosine head; predicts half by the head, half by a vote of the nearest
    training texts in the tuned space (as finetune._FineTuned does for MiniLM)."""

    HEAD_SHARE = 0.5

    def __init__(
        self, texts: list[str], y: np.ndarray, n_classes: int, seed: int, settings: Mapping[str, float] = TUNE
    ):
        import torch

        self.settings = dict(settings)
        torch.manual_seed(seed)
        top = self._copy_of_top()
        params = list(top.parameters())
        for p in params:
            p.requires_grad_(True)
        head = torch.nn.Parameter(torch.randn(n_classes, WIDTH, generator=torch.Generator().manual_seed(seed)) * 0.02)
        batch = int(self.settings["batch"])
        by_length = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
        batches = [np.array(by_length[s : s + batch]) for s in range(0, len(by_length), batch)]
        cached = [self._bottom([texts[i] for i in rows]) for rows in batches]  # the frozen part, run once
        epochs = int(self.settings["epochs"])
        total = max(1, epochs * len(batches))
        optimiser = torch.optim.AdamW(
            [{"params": params, "lr": self.settings["lr"]}, {"params": [head], "lr": self.settings["head_lr"]}],
            weight_decay=self.settings["weight_decay"],
        )
        schedule = warmup_then_decay(torch, optimiser, total, self.settings["warmup"])
        loss_of = torch.nn.CrossEntropyLoss(label_smoothing=self.settings["label_smoothing"])
        targets = torch.from_numpy(np.asarray(y, dtype=np.int64))
        normalize = torch.nn.functional.normalize
        with _deterministic(torch):
            top.train()
            for epoch in range(epochs):  # batches of alike lengths, in a new order each epoch
                for j in np.random.RandomState(seed * 1000 + epoch).permutation(len(batches)):
                    vectors = self._top(top, *cached[j])
                    loss = loss_of(
                        self.settings["scale"] * vectors @ normalize(head, dim=-1).T,
                        targets[torch.from_numpy(batches[j])],
                    )
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    schedule.step()
            top.eval()
            with torch.no_grad():
                train_vectors = np.zeros((len(texts), WIDTH), dtype=np.float32)
                for rows, state in zip(batches, cached):
                    train_vectors[rows] = self._top(top, *state).numpy()
                self.head = normalize(head, dim=-1).numpy().copy()
        self.state = {k: v.detach().numpy().copy() for k, v in top.state_dict().items()}
        self._tuned = top
        self.neighbours = _EmbeddingKNN(train_vectors, np.asarray(y), n_classes)

    def __getstate__(self) -> dict:
        return {"settings": self.settings, "state": self.state, "head": self.head, "neighbours": self.neighbours}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._tuned = None

    def _bottom(self, texts: list[str]) -> tuple:
        import torch
        from transformers.masking_utils import create_bidirectional_mask

        tokenizer, base = _base()
        encoded = tokenizer(
            texts, padding=True, truncation=True, max_length=int(self.settings["max_tokens"]), return_tensors="pt"
        )
        with torch.no_grad():
            hidden = base.embeddings(input_ids=encoded["input_ids"])
            mask = create_bidirectional_mask(
                config=base.config, inputs_embeds=hidden, attention_mask=encoded["attention_mask"]
            )
            bias = base.encoder.compute_position_bias(hidden)
            for layer in base.encoder.layer[: int(self.settings["frozen_layers"])]:
                hidden = layer(hidden, mask, bias)[0]
        return hidden, encoded["attention_mask"], mask

    @staticmethod
    def _top(top, hidden, attention_mask, mask):
        import torch

        _, base = _base()
        bias = base.encoder.compute_position_bias(hidden)
        for layer in top:
            hidden = layer(hidden, mask, bias)[0]
        weights = attention_mask[..., None].to(hidden.dtype)
        return torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)

    def _copy_of_top(self):
        """The pretrained layers above the frozen ones, copied (the shared base model stays pretrained)."""
        return copy.deepcopy(_base()[1].encoder.layer[int(self.settings["frozen_layers"]) :])

    def _tuned_layers(self):
        if self._tuned is None:
            import torch

            top = self._copy_of_top()
            top.load_state_dict({k: torch.from_numpy(v) for k, v in self.state.items()})
            self._tuned = top.eval()
        return self._tuned

    def vectors(self, texts: list[str], batch: int = 64) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), WIDTH), dtype=np.float32)
        by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.no_grad():
            for start in range(0, len(texts), batch):
                rows = by_length[start : start + batch]
                out[rows] = self._top(self._tuned_layers(), *self._bottom([texts[i] for i in rows])).numpy()
        return out

    def proba(self, texts: list[str], embed: Any = None) -> np.ndarray:
        return head_and_neighbours(
            self.vectors(texts), self.head, self.settings["scale"], self.neighbours, self.HEAD_SHARE
        )
