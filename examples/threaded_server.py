"""Serve streaming_app.py with wsgiref and OS threads: no gevent at all.

Each request runs in its own thread; gpipe picks its threading backend,
so the producer and the consumer are daemon threads too.

    python examples/threaded_server.py --port 8000
    curl -s 'http://127.0.0.1:8000/squares.csv?rows=5'
    curl -s --data-binary @big.iso http://127.0.0.1:8000/sha256
"""

import argparse
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from streaming_app import application

import gpipe


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    server = ThreadingWSGIServer((args.host, args.port), WSGIRequestHandler)
    server.set_app(application)
    host, port = server.server_address[:2]
    assert "gevent" not in sys.modules
    print(
        f"serving on http://{host}:{port}/ (backend {gpipe.detect_backend()})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
