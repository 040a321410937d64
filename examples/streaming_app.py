"""The streaming WSGI application of ``python -m gpipe serve``, for any server.

``app`` (also named ``application``) streams uploads into a consumer and
downloads out of a producer through gpipe's pipes. It imports no gevent,
so it runs unchanged under:

* gevent.pywsgi: ``python examples/gevent_server.py --port 8000``;
* gunicorn's gevent worker:
  ``gunicorn -k gevent -b 127.0.0.1:8000 --chdir examples streaming_app:app``;
* a threaded server without gevent: ``python examples/threaded_server.py --port 8000``.

Its code lives in the package, so that the installed ``python -m gpipe
serve`` has it too: read ``gpipe/_serve.py`` (it uses only gpipe's public
API). The routes:

``POST /upload``
    the request body's SHA-256 and size, computed while it streams to a
    temporary file;
``GET /download?size=N[&level=L][&fail_at=M]``
    a tar.gz of N bytes built on the fly, checked by its ``SHA256SUMS``;
    ``fail_at`` makes it fail after M bytes (the client sees a cut body);
``GET /wait?seconds=S[&heartbeat=H]``
    a producer that waits S seconds before answering, with a newline
    every H seconds meanwhile;
``GET /stats``
    the producers and consumers running now.

It serves every request, HTTP/1.0 included, under every server: it
cannot see the framing its client gets (wsgiref answers HTTP/1.1
requests in HTTP/1.0 style; a proxy may downgrade). Where a response is
ended by the connection's close, a failed download ends like a whole
one, so each streamed body carries its own end: the download's gzip
trailer and last member, ``SHA256SUMS``; the last line of ``/wait``.
A client should check them. See the documentation's "Framing" page.
"""

from gpipe._serve import app, application

__all__ = ["app", "application"]
