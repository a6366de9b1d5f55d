"""The trained intent model as a versioned file: `relais intents train` writes it, the classifier
service loads it and refuses one trained on another catalogue (version or content)."""

import copyreg
import io
import json
import os
import pickle
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType

import sklearn

from relais.classifier.catalogue import Catalogue, load_catalogue
from relais.classifier.model import DEFAULT_FAMILY, FAMILIES, IntentModel, ModelUnavailable
from relais.common import progress

DEFAULT_PATH = Path(".relais/models/intents.pkl")
FORMAT = 1  # bump when what is pickled changes shape


class ArtifactError(Exception):
    pass


def model_path() -> Path:
    return Path(os.environ.get("RELAIS_INTENT_MODEL") or DEFAULT_PATH)


def train(catalogue: Catalogue, out: Path, seed: int = 0, family: str = DEFAULT_FAMILY) -> tuple[IntentModel, float]:
    started = time.perf_counter()
    with progress.stage(f"training {family} on catalogue {catalogue.version}"):
        model = IntentModel.train(catalogue, seed=seed, family=family)
    seconds = time.perf_counter() - started
    save(
        model,
        out,
        {
            "catalogue_version": catalogue.version,
            "catalogue_sha256": catalogue.sha256,
            "seed": seed,
            "family": getattr(model, "family", "tfidf-logreg"),
            "train_seconds": round(seconds, 3),
        },
    )
    return model, seconds


def save(model: IntentModel, path: Path, metadata: dict) -> None:
    metadata = metadata | {
        "format": FORMAT,
        "trained_at": datetime.now(timezone.utc).isoformat(),
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    # The model keeps read-only mappings, which pickle does not know; they travel as dicts.
    pickler.dispatch_table = copyreg.dispatch_table | {MappingProxyType: lambda m: (read_only, (dict(m),))}
    pickler.dump({"metadata": metadata, "model": model})
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)  # a reader never sees half a file


def read_only(mapping: dict) -> MappingProxyType:
    return MappingProxyType(mapping)


def load(path: Path) -> tuple[IntentModel, dict]:
    """The model and its metadata; ValueError when written by another format or scikit-learn version."""
    # pickle runs code from the file: load only artifacts this deployment wrote itself.
    doc = pickle.loads(path.read_bytes())
    metadata = doc.get("metadata", {}) if isinstance(doc, dict) else {}
    if metadata.get("format") != FORMAT:
        raise ValueError(f"artifact format {metadata.get('format')!r}, expected {FORMAT}")
    if metadata.get("sklearn", "").split(".")[:2] != sklearn.__version__.split(".")[:2]:
        raise ValueError(f"trained with scikit-learn {metadata.get('sklearn')}, running {sklearn.__version__}")
    return doc["model"], metadata


def load_for(catalogue: Catalogue, path: Path | None = None) -> IntentModel:
    """The artifact at `path`, checked against the catalogue the service runs with."""
    path = path or model_path()
    if not path.exists():
        raise ArtifactError(f"no intent model at {path}: run `relais intents train --out {path}`")
    try:
        model, metadata = load(path)
    except (ValueError, pickle.UnpicklingError, EOFError, AttributeError) as error:
        raise ArtifactError(f"cannot use {path}: {error}; run `relais intents train --out {path}`") from None
    trained_on = (metadata.get("catalogue_version"), metadata.get("catalogue_sha256"))
    if trained_on != (catalogue.version, catalogue.sha256):
        raise ArtifactError(
            f"{path} was trained on catalogue {trained_on[0]!r} (sha256 {str(trained_on[1])[:12]}), but the service "
            f"runs catalogue {catalogue.version!r} (sha256 {catalogue.sha256[:12]}): retrain with `relais intents train`"
        )
    try:  # once before the first message: loads the encoder, and a model its encoder no longer fits is refused here
        model.predict("bonjour")
    except ModelUnavailable as error:
        raise ArtifactError(f"cannot use {path}: {error}") from None
    return model


def train_cli(args) -> int:
    family = getattr(args, "family", None) or DEFAULT_FAMILY
    if family not in FAMILIES:
        print(f"relais intents train: unknown family {family!r} (known: {', '.join(FAMILIES)})", file=sys.stderr)
        return 2
    try:
        catalogue = load_catalogue(args.catalogue)
    except Exception as error:  # CatalogueError, missing file: the message names the problem
        print(f"relais intents train: {error}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else model_path()
    note = student_note(catalogue, family)
    if note:
        print(note, file=sys.stderr)
    try:
        model, seconds = train(catalogue, out, args.seed, family)
    except ModelUnavailable as error:
        print(f"relais intents train: {error}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "artifact": str(out),
                "catalogue_version": catalogue.version,
                "catalogue_sha256": catalogue.sha256,
                "intents": len(catalogue.intents),
                "family": getattr(model, "family", "tfidf-logreg"),
                "seed": args.seed,
                "train_seconds": round(seconds, 3),
            }
        )
    )
    return 0


def distil_cli(args) -> int:
    """`relais intents distil`: the student encoder the minilm-student family reads, learnt from the catalogue's
    examples (or --train's rows), written to --out; one JSON line on success."""
    from relais.classifier.evaluate import InputError, read_csv
    from relais.classifier.model.distil import distil
    from relais.classifier.model.student import fingerprint, student_path

    try:
        if args.train:
            texts, labels = read_csv(args.train)
            source = {"train": args.train}
        else:
            try:
                catalogue = load_catalogue(args.catalogue)
            except Exception as error:  # CatalogueError, missing file: the message names the problem
                raise InputError(str(error)) from None
            texts, labels = IntentModel.training_set(catalogue)
            source = {"catalogue_version": catalogue.version, "catalogue_sha256": catalogue.sha256}
        out = Path(args.out) if args.out else student_path()
        started = time.perf_counter()
        distil(texts, labels, out, args.seed)
    except (InputError, ModelUnavailable) as error:
        print(f"relais intents distil: {error}", file=sys.stderr)
        return 2
    summary = (
        {"student": str(out), "sha256": fingerprint(out), "rows": len(texts), "seed": args.seed}
        | source
        | {"seconds": round(time.perf_counter() - started, 1)}
    )
    # What it learnt, beside it: `relais intents train` says when the catalogue changed since.
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary))
    return 0


def student_note(catalogue: Catalogue, family: str) -> str | None:
    """For minilm-student: a line when its student was distilled on another catalogue than the one being trained
    (still usable: the members are retrained on the catalogue; distilling again helps when many examples changed)."""
    from relais.classifier.model.student import student_path

    if family != "minilm-student":
        return None
    try:
        learnt = json.loads(student_path().with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if learnt.get("catalogue_sha256") in (None, catalogue.sha256):
        return None
    return (
        f"note: the student encoder {student_path()} was distilled on catalogue {learnt.get('catalogue_version')!r}, "
        f"not on this one ({catalogue.version!r}); the model is trained on this one all the same. Distil it again "
        "when many examples changed: `relais intents distil` (torch: make bench-install; tens of minutes)"
    )
