"""Throwaway TLS certificates for the SIP-over-TLS tests, made with the openssl command: a test CA, leaf
certificates it signs for 127.0.0.1 (subjectAltName IP and CN, as pjsip checks the peer's address), and
a second, untrusted CA for a peer nobody should believe. Keys are EC P-256, unencrypted unless asked."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

from requirements import require

OPENSSL = shutil.which("openssl")
DAYS = "2"


@dataclasses.dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path
    ca: Path  # the CA certificate that signed it

    def combined(self, path: Path) -> Path:
        """Certificate and key in one PEM file (baresip's sip_certificate)."""
        path.write_text(self.cert.read_text() + self.key.read_text())
        return path


def _openssl(*args: str, cwd: Path) -> None:
    binary = OPENSSL
    require(binary, "the openssl executable", "apt-get install openssl")
    done = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr[-2000:]}")


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}-ca.pem", directory / f"{name}-ca.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", DAYS, "-subj", f"/CN={name} test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=directory)
    return cert, key


def issue(directory: Path, ca: tuple[Path, Path], name: str, *, password: str = "") -> Issued:
    """A certificate for 127.0.0.1 signed by `ca`; its key encrypted with `password` when given."""
    ca_cert, ca_key = ca
    cert, key, csr = directory / f"{name}.pem", directory / f"{name}.key", directory / f"{name}.csr"
    extensions = directory / f"{name}.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                          "extendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
             "-out", str(csr), "-subj", "/CN=127.0.0.1", cwd=directory)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(cert), "-days", DAYS, "-extfile", str(extensions), cwd=directory)
    if password:
        encrypted = directory / f"{name}.enc.key"
        _openssl("pkey", "-in", str(key), "-out", str(encrypted), "-aes256", "-passout", f"pass:{password}",
                 cwd=directory)
        encrypted.replace(key)
    return Issued(cert, key, ca_cert)
