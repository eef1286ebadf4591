"""A small web app to run as a service: a page, a JSON health endpoint, a log line per request.

    python webapp.py --port 8050 --greeting "hello there"

Only the standard library: it runs in any Python environment, including the
Jupyter server's own. As a service, give it an HTTP health check on
http://127.0.0.1:8050/health so systemd restarts it when it stops answering.
"""

import argparse
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8050")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--greeting", default=os.environ.get("GREETING", "hello"))
    args = parser.parse_args()
    served = 0

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            nonlocal served
            served += 1
            if self.path == "/health":
                body = json.dumps({"status": "ok", "uptime_s": round(time.time() - STARTED, 1), "requests": served})
                kind = "application/json"
            else:
                body = f"<h1>{args.greeting}</h1><p>Served {served} requests. Try <a href='/health'>/health</a>.</p>"
                kind = "text/html; charset=utf-8"
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *values) -> None:
            print(f"{self.address_string()} {fmt % values}", flush=True)

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"webapp: {args.greeting!r} on http://{args.host}:{args.port}/ (health: /health)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
