import os
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

here = os.path.dirname(os.path.abspath(__file__))


def read(*parts):
    with open(os.path.join(here, *parts), encoding="utf-8") as f:
        return f.read()


version = {}
exec(read("gpipe", "_version.py"), version)


def extensions():
    """The compiled build of gpipe/_core.py and gpipe/_backends.py, as
    gevent compiles its own primitives: the same .py files, typed by
    gpipe/_gpipe_c_core.pxd and gpipe/_gpipe_c_backends.pxd; and the
    C-level mutex the core uses, gpipe/_gpipe_c_mutex.pyx.

    None without Cython (an install with no build isolation) or with
    PURE_PYTHON set: then gpipe runs its pure-Python build.
    """
    if os.environ.get("PURE_PYTHON"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    core = Extension(
        "gpipe._gpipe_c_core",
        sources=["gpipe/_core.py"],
        depends=[
            "gpipe/_gpipe_c_core.pxd",
            "gpipe/_gpipe_c_mutex.pxd",
            "gpipe/_gpipe_c_backends.pxd",
        ],
    )
    # The core's mutex, a C-level lock (the pure build's is _thread.RLock).
    mutex = Extension(
        "gpipe._gpipe_c_mutex",
        sources=["gpipe/_gpipe_c_mutex.pyx"],
        depends=["gpipe/_gpipe_c_mutex.pxd"],
    )
    # The backends: the core calls their semaphore() and acquire() on every wait.
    backends = Extension(
        "gpipe._gpipe_c_backends",
        sources=["gpipe/_backends.py"],
        depends=["gpipe/_gpipe_c_backends.pxd"],
    )
    try:
        return cythonize(
            [mutex, core, backends],
            # The C source apart for each interpreter: builds for several
            # interpreters may run at once in one checkout.
            build_dir=f"build/cython{sys.version_info[0]}{sys.version_info[1]}",
            language_level="3str",
            compiler_directives={"binding": True, "annotation_typing": False},
            quiet=True,
        )
    except Exception as exc:  # noqa: BLE001 -- a Cython that cannot compile it
        print(f"gpipe: Cython failed ({exc}); installing the pure-Python build", file=sys.stderr)
        return []


class OptionalBuildExt(build_ext):
    """Build the extension if this machine can; install pure Python if not."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 -- no compiler, no Python headers
            self.fail(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 -- as above
            self.fail(exc)

    def fail(self, exc):
        print(
            f"gpipe: the compiled build failed ({exc}); installing the pure-Python build",
            file=sys.stderr,
        )


setup(
    name="gevent-gpipe",
    version=version["__version__"],
    description="Go's io.Pipe for gevent: a synchronous, unbuffered in-memory byte pipe",
    long_description=read("README.md"),
    long_description_content_type="text/markdown",
    license="MIT",
    url="https://github.com/gpipe/gpipe",
    project_urls={
        "Documentation": "https://github.com/gpipe/gpipe/tree/main/docs",
        "Source": "https://github.com/gpipe/gpipe",
        "Changelog": "https://github.com/gpipe/gpipe/blob/main/docs/changelog.rst",
        # Bug reports: a new issue there, with the output of python -m gpipe --version.
        "Bug Tracker": "https://github.com/gpipe/gpipe/issues",
    },
    packages=find_packages(include=["gpipe", "gpipe.*"]),
    ext_modules=extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
    package_data={"gpipe": ["py.typed"]},
    python_requires=">=3.10",
    install_requires=["gevent>=26.8.0", "zope.interface>=5.0"],
    extras_require={
        "test": [
            "pytest>=7",
            "pytest-timeout>=2.1",
            "hypothesis>=6.50",
            # tests/test_interop.py: real HTTP clients sending a reader as a body.
            "requests>=2.28",
            "urllib3>=1.26",
            # tests/test_readme.py: the README's code blocks, as written.
            "pytest-codeblocks>=0.17",
            # tests/test_robustness.py: gevent's libuv loop (its default on
            # Windows) is built on cffi.
            "cffi>=1.15",
        ],
        "plot": ["matplotlib"],
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Framework :: gevent",
        "Intended Audience :: Developers",
        "License :: OSI Approved :: MIT License",
        "Operating System :: POSIX",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Programming Language :: Python :: Implementation :: CPython",
        "Topic :: Software Development :: Libraries",
        "Typing :: Typed",
    ],
)
