"""Build the one compiled module; everything else about the package lives in pyproject.toml.

``quietline.screening._qtable`` is the C lookup of the screening snapshot's quotient tables (see its
source for why). It needs only a C compiler and the Python headers, both on every machine the README
targets; it is not optional, so a machine that cannot build it fails at install rather than running
the screening engine at a fraction of its speed unnoticed.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "quietline.screening._qtable",
            sources=["src/quietline/screening/_qtable.c"],
            extra_compile_args=["-O3", "-std=c11"],
        )
    ]
)
