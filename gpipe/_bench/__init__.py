"""``python -m gpipe bench``: gpipe against the alternatives, in one process.

The parts, each a module of its own:

* :mod:`.cases`: what is timed -- every transfer (gpipe, and each
  alternative a user would pick) and the line-reading cases;
* :mod:`.rounds`: calibration, interleaved shuffled rounds, and the
  statistics of a case over its rounds;
* :mod:`.fairness`: how late a sleeping greenlet wakes while a stream
  runs flat out;
* :mod:`.memory`: the size of an idle pipe, and many concurrent pairs;
* :mod:`.report`: the comparisons (ratios and their spread between
  rounds), the text and reST reports, and the goals of ``--check``;
* :mod:`.plot`: the picture of the same comparison (needs matplotlib);
* :mod:`.command`: the command line.

Nothing here is imported by :mod:`gpipe` itself, and everything here
uses only gpipe's public API.
"""
