"""The model as one file (IntentModel.save / load): a plain-data envelope of metadata, checked before the pickled
model inside is read. Pickles name classes by module: artifacts written before the model became a package name
relais.classifier.model.<class> (the package re-exports those) or relais.classifier.mpnet.MpnetTuned (MOVED)."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from pathlib import Path
from typing import Any, Protocol, TypeVar

from relais.classifier.catalogue import Catalogue

# Bump when what save() writes changes shape; load() refuses any other.
ARTIFACT_FORMAT = 3


def catalogue_sha256(catalogue: Catalogue) -> str:
    """sha256 of the catalogue file's bytes (what the service compares), else of a canonical dump."""
    if getattr(catalogue, "sha256", ""):
        return catalogue.sha256
    source = Path(catalogue.source)
    if catalogue.source != "<memory>" and source.is_file():
        return hashlib.sha256(source.read_bytes()).hexdigest()
    dump = {
        "version": catalogue.version,
        "languages": list(catalogue.languages),
        "default_threshold": catalogue.default_threshold,
        "intents": {
            i.id: {"threshold": i.threshold, "examples": {k: list(v) for k, v in i.examples.items()}} for i in catalogue
        },
    }
    return hashlib.sha256(json.dumps(dump, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class _SafeUnpickler(pickle.Unpickler):
    """Reads only plain data (dict, str, bytes, numbers): the artifact's envelope, checked before the model."""

    def find_class(self, module: str, name: str) -> Any:
        raise ValueError(f"not an intent model artifact (it refers to {module}.{name})")


# Classes an older relais pickled under another module -> where they live now.
MOVED = {("relais.classifier.mpnet", "MpnetTuned"): ("relais.classifier.model.mpnet_tuned", "MpnetTuned")}


class _ModelUnpickler(pickle.Unpickler):
    """pickle.loads, finding the classes that moved since an artifact was written."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(*MOVED.get((module, name), (module, name)))


def save_model(model: Any, path: Path | str) -> None:
    """Write the model and its metadata (format, family, seed, catalogue, versions) to one file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    envelope = {
        "metadata": dict(model.metadata, format=ARTIFACT_FORMAT),
        "model": pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(pickle.dumps(envelope, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(path)  # a reader never sees half a file


class _Artifact(Protocol):
    metadata: dict[str, Any]


_Model = TypeVar("_Model", bound=_Artifact)


def load_model(path: Path | str, expected: type[_Model]) -> _Model:
    """Read an artifact holding an `expected`; ValueError when it has another format or was written by another
    scikit-learn.

    The envelope is read as plain data and checked first; the model inside is a pickle, which runs code
    from the file: load only artifacts this deployment wrote itself.
    """
    import sklearn

    try:
        envelope = _SafeUnpickler(io.BytesIO(Path(path).read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as error:
        raise ValueError(f"not an intent model artifact ({error})") from None
    metadata = envelope.get("metadata") if isinstance(envelope, dict) else None
    if not isinstance(metadata, dict):
        raise ValueError("not an intent model artifact (no metadata)")
    if metadata.get("format") != ARTIFACT_FORMAT:
        raise ValueError(f"artifact format {metadata.get('format')!r}, this relais reads format {ARTIFACT_FORMAT}")
    written, running = str(metadata.get("sklearn", "?")), sklearn.__version__
    if written.split(".")[:2] != running.split(".")[:2]:
        raise ValueError(f"artifact written with scikit-learn {written}, running {running}")
    model = _ModelUnpickler(io.BytesIO(envelope["model"])).load()
    if not isinstance(model, expected):
        raise ValueError("not an intent model artifact")
    model.metadata = metadata
    return model
