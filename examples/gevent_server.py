"""Serve streaming_app.py with gevent.pywsgi: one greenlet per body.

gevent.pywsgi needs no monkey-patching, and neither does gpipe.

python examples/gevent_server.py --port 8000
curl -s 'http://127.0.0.1:8000/download?size=10000000' | tar tz
curl -s -H 'Transfer-Encoding: chunked' --data-binary @big.iso http://127.0.0.1:8000/upload
"""

import argparse

from gevent.pywsgi import WSGIServer
from streaming_app import app

import gpipe


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    server = WSGIServer((args.host, args.port), app)
    server.start()
    host, port = server.address[:2]
    print(
        f"serving on http://{host}:{port}/ (backend {gpipe.detect_backend()})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop(5)


if __name__ == "__main__":
    main()
