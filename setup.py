"""Builds the optional Cython extension ``workqueue._fastio``.

A machine without a C compiler still gets a working package: the build of the
extension is allowed to fail, and ``workqueue.data.fastio`` then falls back to the
pure-Python implementation of the same interface.
"""
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self):
        try:
            super().run()
        except Exception as error:  # no compiler, no headers
            self.warn(f"workqueue._fastio not built ({error}); using the pure-Python fallback")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as error:
            self.warn(f"workqueue._fastio not built ({error}); using the pure-Python fallback")


def extensions():
    if not os.path.exists("src/workqueue/_fastio.pyx"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    # Named explicitly: the module is ``workqueue._fastio`` whatever Cython infers from the tree.
    return cythonize(
        [Extension("workqueue._fastio", ["src/workqueue/_fastio.pyx"])],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
        quiet=True,
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
