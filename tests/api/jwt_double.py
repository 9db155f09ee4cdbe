"""Signing Supabase-like access tokens in tests, and a JWKS endpoint double on loopback."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

HS_SECRET = "test-supabase-jwt-secret-of-at-least-32-bytes"


@dataclass
class SigningKey:
    kid: str
    private: Any
    algorithm: str

    def public_jwk(self) -> dict[str, Any]:
        algo = (
            jwt.algorithms.ECAlgorithm if self.algorithm == "ES256" else jwt.algorithms.RSAAlgorithm
        )
        jwk = json.loads(algo.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def new_key(algorithm: str = "ES256") -> SigningKey:
    private = (
        ec.generate_private_key(ec.SECP256R1())
        if algorithm == "ES256"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    return SigningKey(f"kid-{uuid.uuid4().hex[:8]}", private, algorithm)


def claims_for(user_id: uuid.UUID | str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 3600,
        "email": "user@example.test",
        "aal": "aal1",
        "session_id": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def hs256_token(user_id: uuid.UUID | str, secret: str = HS_SECRET, **overrides: Any) -> str:
    return jwt.encode(claims_for(user_id, **overrides), secret, algorithm="HS256")


def signed_token(user_id: uuid.UUID | str, key: SigningKey, **overrides: Any) -> str:
    return jwt.encode(
        claims_for(user_id, **overrides),
        key.private,
        algorithm=key.algorithm,
        headers={"kid": key.kid},
    )


@dataclass
class JwksDouble:
    """The project's /auth/v1/.well-known/jwks.json, served from a thread on 127.0.0.1."""

    keys: list[SigningKey] = field(default_factory=list)
    fetches: int = 0
    url: str = ""

    def document(self) -> bytes:
        return json.dumps({"keys": [k.public_jwk() for k in self.keys]}).encode()


@contextmanager
def jwks_server(*keys: SigningKey) -> Iterator[JwksDouble]:
    double = JwksDouble(list(keys))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            double.fetches += 1
            body = double.document()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    double.url = f"http://127.0.0.1:{server.server_address[1]}/auth/v1/.well-known/jwks.json"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
