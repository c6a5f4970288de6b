"""An HTTPS server that answers every GET with what it received: the access tier's probe of the service proxy.

Why: what the kube-apiserver's service proxy (`/api/v1/namespaces/N/services/https:NAME:PORT/proxy/...`)
forwards to a backend is the question the tier must answer (which headers, a client certificate or not),
and only the backend can see it. Run inside the network namespace as

    python -m tests.access.echo <host> <port> <cert> <key> <client-ca>

it asks for a client certificate (optional, verified against <client-ca>: the front proxy's CA) and
answers `{"path", "headers": [[name, value], ...], "peer": <subject CN of a verified client cert or null>}`.
"""

from __future__ import annotations

import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        peer = None
        cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        for rdn in (cert or {}).get("subject", ()):
            for pair in rdn:
                if isinstance(pair, tuple) and pair[0] == "commonName":
                    peer = pair[1]
        body = json.dumps({"path": self.path, "headers": [[k, v] for k, v in self.headers.items()],
                           "peer": peer}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def main(host: str, port: str, cert: str, key: str, client_ca: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(client_ca)
    context.verify_mode = ssl.CERT_OPTIONAL
    server = HTTPServer((host, int(port)), Echo)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"echo serving on https://{host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:6])
