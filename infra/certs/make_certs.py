"""`make certs`: a local certificate authority and certificates for the demo stack's TLS.

    python -m infra.certs.make_certs [--out .relais/certs] [--host 127.0.0.1 --host localhost] [--days 825]

Writes, into --out (default .relais/certs/):
  ca.pem, ca.key            the local CA (trust ca.pem: RELAIS_TLS_CA, RELAIS_TLS_CLIENT_CA)
  server.pem, server.key    the servers' certificate for the hosts (IP and DNS names), signed by the CA
  client.pem, client.key    a client certificate, for mutual TLS (RELAIS_TLS_CLIENT_CERT / _KEY)
and prints the environment lines that turn TLS on. Private keys are written readable by the owner only.

It drives the `openssl` command (OpenSSL 1.1.1 or later, present on Debian), so relais needs no
extra Python package for it. A demo CA, not a production PKI.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / ".relais" / "certs"
DEFAULT_HOSTS = ("127.0.0.1", "localhost")


def _openssl(*args: str) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("make certs needs the openssl command (Debian: apt-get install -y openssl)")
    result = subprocess.run([binary, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    path.chmod(0o600)


def _san(hosts: tuple[str, ...]) -> str:
    names = []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
            names.append(f"IP:{host}")
        except ValueError:
            names.append(f"DNS:{host}")
    return ",".join(names)


def _sign(out: Path, name: str, subject: str, extensions: str, days: int) -> None:
    """A key and a certificate for `subject`, signed by out/ca.*, with these X.509v3 extensions."""
    _key(out / f"{name}.key")
    with tempfile.TemporaryDirectory() as tmp:
        csr, ext = Path(tmp) / "req.csr", Path(tmp) / "ext.cnf"
        ext.write_text(extensions)
        _openssl("req", "-new", "-key", str(out / f"{name}.key"), "-subj", subject, "-out", str(csr))
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(out / "ca.pem"),
            "-CAkey",
            str(out / "ca.key"),
            "-CAcreateserial",
            "-CAserial",
            str(Path(tmp) / "ca.srl"),
            "-days",
            str(days),
            "-sha256",
            "-extfile",
            str(ext),
            "-out",
            str(out / f"{name}.pem"),
        )


def make_certs(out: Path = DEFAULT_OUT, hosts: tuple[str, ...] = DEFAULT_HOSTS, days: int = 825) -> dict[str, Path]:
    """Writes the CA, the server and the client certificates into `out`; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    _key(out / "ca.key")
    _openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        str(out / "ca.key"),
        "-sha256",
        "-days",
        str(days),
        "-subj",
        "/O=relais/CN=relais local CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        str(out / "ca.pem"),
    )
    _sign(
        out,
        "server",
        f"/O=relais/CN={hosts[0]}",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage=serverAuth\nsubjectAltName={_san(hosts)}\n",
        days,
    )
    _sign(
        out,
        "client",
        "/O=relais/CN=relais client",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
        days,
    )
    return {name: out / name for name in ("ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key")}


def env_lines(paths: dict[str, Path], mutual: bool = False) -> list[str]:
    """The environment that turns TLS on with these files (servers and clients)."""
    lines = [
        f"RELAIS_TLS_CERT={paths['server.pem']}",
        f"RELAIS_TLS_KEY={paths['server.key']}",
        f"RELAIS_TLS_CA={paths['ca.pem']}",
    ]
    if mutual:
        lines += [
            f"RELAIS_TLS_CLIENT_CA={paths['ca.pem']}",
            f"RELAIS_TLS_CLIENT_CERT={paths['client.pem']}",
            f"RELAIS_TLS_CLIENT_KEY={paths['client.key']}",
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make certs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--host", action="append", help="a name or IP the servers answer on (repeatable; default 127.0.0.1, localhost)"
    )
    parser.add_argument("--days", type=int, default=825)
    args = parser.parse_args(argv)
    try:
        paths = make_certs(args.out, tuple(args.host or DEFAULT_HOSTS), args.days)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"local CA and certificates in {args.out}. TLS for every gRPC server and client (export, then make up):")
    print("\n".join(f"  export {line}" for line in env_lines(paths)))
    print("and for mutual TLS (clients must present a certificate) add:")
    print("\n".join(f"  export {line}" for line in env_lines(paths, mutual=True)[3:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
