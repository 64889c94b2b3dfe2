"""Certificates and keys for the local test bed: a CA, the API server's serving cert, an admin
client cert (system:masters), the service-account signing key pair, and the client identities of
the real node's parts: its kubelet (system:node:<name>), kube-proxy, CoreDNS, and the API
server's own client cert for reaching the kubelet (logs, exec)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID = dt.timedelta(days=30)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _name(common: str, org: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if org:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(parts)


# name in the returned paths -> (common name, organization) of a client certificate
CLIENTS = {
    "admin": ("admin", "system:masters"),
    "kube-proxy": ("system:kube-proxy", None),  # bound to system:node-proxier by bootstrap RBAC
    "coredns": ("system:spillway-coredns", None),  # its ClusterRole comes with the node
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
}


def write_pki(directory: Path, node_name: str = "", node_ip: str = "") -> dict[str, Path]:
    """Writes every file the test bed needs; returns their paths by role. With a node IP the
    API server's certificate also names it, so pods reach it through the `kubernetes` Service."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = _key()
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name("spillway-local-ca")).issuer_name(_name("spillway-local-ca"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(common: str, org: str | None, usage: x509.ObjectIdentifier,
              sans: list[x509.GeneralName] | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = _key()
        builder = (
            x509.CertificateBuilder().subject_name(_name(common, org)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + _VALID)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    serving, serving_key = issue("kube-apiserver", None, ExtendedKeyUsageOID.SERVER_AUTH, [
        x509.DNSName("localhost"), x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"), x509.DNSName("kubernetes.default.svc.cluster.local"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
        *([x509.IPAddress(ipaddress.ip_address(node_ip))] if node_ip else []),
    ])
    clients = dict(CLIENTS)
    if node_name:
        clients["kubelet"] = (f"system:node:{node_name}", "system:nodes")  # the Node authorizer's identity
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    paths = {name: directory / name for name in ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "sa.key",
                                                 "sa.pub")}
    pem = serialization.Encoding.PEM
    paths["ca.crt"].write_bytes(ca_cert.public_bytes(pem))
    _write_key(paths["ca.key"], ca_key)
    paths["apiserver.crt"].write_bytes(serving.public_bytes(pem))
    _write_key(paths["apiserver.key"], serving_key)
    for role, (common, org) in clients.items():
        cert, key = issue(common, org, ExtendedKeyUsageOID.CLIENT_AUTH)
        paths[f"{role}.crt"], paths[f"{role}.key"] = directory / f"{role}.crt", directory / f"{role}.key"
        paths[f"{role}.crt"].write_bytes(cert.public_bytes(pem))
        _write_key(paths[f"{role}.key"], key)
    _write_key(paths["sa.key"], sa_key)
    paths["sa.pub"].write_bytes(sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo))
    return paths
