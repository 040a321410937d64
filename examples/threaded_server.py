"""Serve streaming_app.py with wsgiref and OS threads: no gevent at all.

Each request runs in its own thread; gpipe picks its threading backend,
so the producer and the consumer are daemon threads too.

wsgiref answers in HTTP/1.0 style, without chunked encoding, whatever the
request's version: a download's end is the connection's close, so a
failed download ends like a whole one (curl exits 0) and only the tar.gz's
own end tells (its gzip trailer, its SHA256SUMS member). It reads no
chunked request bodies either: a chunked upload gets 411 Length Required.
gevent.pywsgi and gunicorn abort a chunked response instead (curl exits 18).

    python examples/threaded_server.py --port 8000
    curl -s 'http://127.0.0.1:8000/download?size=10000000' | tar tz
    curl -s --data-binary @big.iso http://127.0.0.1:8000/upload
"""

import argparse
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from streaming_app import app

import gpipe


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    server = ThreadingWSGIServer((args.host, args.port), WSGIRequestHandler)
    server.set_app(app)
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
