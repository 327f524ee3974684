"""Stand-ins for the Secrets a rendered chart mounts, so `ocrgate check-config` reads real files:
those whose content must parse: a self-signed certificate and key (also as the client CA), a
callers file and a Redis URL. `check-chart.sh` writes plain text for any other file a configuration
names (a key, a token).
usage: chart-secrets.py DIR"""
import datetime
import hashlib
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

root = pathlib.Path(sys.argv[1])
tls = root / "ocrgate-tls"
tls.mkdir(parents=True, exist_ok=True)
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocrgate")])
now = datetime.datetime.now(datetime.timezone.utc)
certificate = (
    x509.CertificateBuilder()
    .subject_name(name)
    .issuer_name(name)
    .public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now)
    .not_valid_after(now + datetime.timedelta(days=1))
    .add_extension(x509.SubjectAlternativeName([x509.DNSName("ocrgate")]), critical=False)
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .sign(key, hashes.SHA256())
)
pem = certificate.public_bytes(serialization.Encoding.PEM)
(tls / "tls.crt").write_bytes(pem)
(tls / "ca.crt").write_bytes(pem)
(tls / "tls.key").write_bytes(
    key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
)
callers = root / "ocrgate-callers"
callers.mkdir(exist_ok=True)
(callers / "callers.toml").write_text(
    '[callers.billing]\napi_key_sha256 = "%s"\nrpcs = ["RecognizeBankCard"]\n'
    % hashlib.sha256(b"chart-check-key").hexdigest()
)
redis = root / "ocrgate-redis"
redis.mkdir(exist_ok=True)
(redis / "redis-url").write_text("redis://redis.ocrgate:6379/0\n")
