"""Stand-in for the Enterprise NOC Grafana image: answers GET /api/health on 3000."""

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/api/health":
            self.send_error(404)
            return
        body = json.dumps({"database": "ok", "version": os.environ["LORAWAN_STACK_VERSION"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of http.server
        return


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("Grafana stand-in listening on :3000", flush=True)
    # All interfaces of the container: compose publishes them on the host's loopback.
    ThreadingHTTPServer(("0.0.0.0", 3000), Handler).serve_forever()  # noqa: S104
