"""Threads without gevent: gzip in one thread, gunzip in another."""

import gzip
import sys

import gpipe


def compress(writer, count):
    # GzipFile leaves the writer open: spawn_producer closes it.
    with gzip.GzipFile(fileobj=writer, mode="wb") as gz:
        for i in range(count):
            gz.write(b"line %d\n" % i)


def main():
    print("backend:", gpipe.detect_backend())
    reader = gpipe.spawn_producer(compress, 100_000)
    with reader, gzip.GzipFile(fileobj=reader, mode="rb") as gz:
        lines = gz.readlines()
    print(f"lines: {len(lines)}, last: {lines[-1]!r}")
    print("gevent imported:", "gevent" in sys.modules)


if __name__ == "__main__":
    main()
