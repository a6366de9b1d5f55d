"""The `minilm-student` family's encoder: a MiniLM distilled offline from the `mpnet-ft` ensemble (model.distil,
torch) and written as the same int8 ONNX graph `minilm-onnx` serves (onnx_encoder), so it serves at that cost
without torch. A model remembers the sha256 of the student it was trained on and is refused with another file.

Which student: $RELAIS_STUDENT_ENCODER, else .relais/models/student-int8.onnx, written by `relais intents distil`.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from relais.classifier.model.errors import ModelUnavailable
from relais.classifier.model.onnx_encoder import OnnxEncoder


def student_path() -> Path:
    return Path(os.environ.get("RELAIS_STUDENT_ENCODER") or ".relais/models/student-int8.onnx")


@functools.lru_cache(maxsize=8)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(path: Path) -> str:
    """The student file's sha256 (read once per process while the file is unchanged)."""
    try:
        stat = path.stat()
    except OSError:
        raise ModelUnavailable(
            f"no student encoder at {path}: `relais intents distil` writes one (torch: `make bench-install`)"
        ) from None
    return _sha256(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _loaded(path: Path, sha256: str) -> OnnxEncoder:
    return OnnxEncoder(path)


def student_encoder(path: Path, sha256: str) -> OnnxEncoder:
    """The student at `path`, loaded once per process; ModelUnavailable when it is not the one expected."""
    found = fingerprint(path)
    if found != sha256:
        raise ModelUnavailable(
            f"this minilm-student model was trained on the student encoder {sha256[:12]}, but {path} is "
            f"{found[:12]}: retrain with `relais intents train --family minilm-student`"
        )
    return _loaded(path.resolve(), sha256)
