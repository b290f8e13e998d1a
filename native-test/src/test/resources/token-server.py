# A Bearer token server for docker-registry's `auth: token:` (the facts are in HOST-NOTES.md):
# RS256 JWTs with an x5c header holding a self-signed signing certificate, which it writes to
# BUNDLE for the registry's rootcertbundle. Basic credentials USER:PASS are required.
# Usage: PORT BUNDLE SERVICE ISSUER USER PASS LOG
import base64, datetime, http.server, json, os, sys, time, urllib.parse
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

port, bundle, service, issuer, user, password, log = sys.argv[1:8]
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vimgfs test token signer")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
with open(bundle + ".tmp", "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))
os.rename(bundle + ".tmp", bundle)
x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        auth = self.headers.get("Authorization", "")
        with open(log, "a") as f:
            f.write(f"{self.path} {'basic' if auth else 'anonymous'}\n")
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if auth != expected:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        access = []
        for scope in query.get("scope", []):
            kind, repo, actions = scope.split(":")
            access.append({"type": kind, "name": repo, "actions": actions.split(",")})
        t = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [x5c]}
        claims = {"iss": issuer, "aud": service, "sub": user, "exp": t + 300, "nbf": t - 10, "iat": t,
                  "jti": os.urandom(8).hex(), "access": access}
        signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        signature = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        body = json.dumps({"token": signing + "." + b64(signature), "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
