#!/usr/bin/env python3
"""A local stand-in for the Hugging Face and arXiv APIs, serving the responses the fetch tests
use (tests/fixtures/fetch/), so that `papersim fetch` can be tried without the network:

    python3 scripts/fetch-test-server.py 8765 &
    papersim fetch hf --date 2026-03-01 --endpoint http://127.0.0.1:8765/api/daily_papers
    PAPERSIM_ARXIV_INTERVAL_MS=0 papersim fetch arxiv --category cs.CL --max 5 --page-size 2 \\
        --endpoint http://127.0.0.1:8765/api/query

/api/daily_papers answers the 2026-03-01 listing for that date and [] for any other day;
/api/query answers the page of 2 results that `start` (0, 2 or 4) asks for."""
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).resolve().parent.parent / "tests/fixtures/fetch"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        q = parse_qs(url.query)
        if url.path.endswith("/daily_papers"):
            day = q.get("date", [""])[0]
            body = (FIXTURES / "hf-2026-03-01.json").read_bytes() if day == "2026-03-01" else b"[]"
            kind = "application/json"
        elif url.path.endswith("/query"):
            page = int(q.get("start", ["0"])[0]) // 2 + 1
            path = FIXTURES / f"arxiv-cs.CL-page{page}.xml"
            if not path.exists():
                self.send_error(404)
                return
            body = path.read_bytes()
            kind = "application/atom+xml"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8765), Handler).serve_forever()
