"""Build script: maps yibao_api/ to yibao (the top-level API), core/, dsl/, plugins/ to
yibao.core, yibao.dsl, yibao.plugins and
compiles every Cython module under core/ and plugins/.

Set YIBAO_DEBUG_KERNEL=1 to build the kernels with bounds checks and wraparound on (slow,
for chasing an out-of-bounds read), the way scikit-learn keeps its tree code debuggable.
"""
import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

ROOTS = {"core": "yibao.core", "dsl": "yibao.dsl", "plugins": "yibao.plugins"}
DEBUG = os.environ.get("YIBAO_DEBUG_KERNEL") == "1"


def packages():
    found = []
    for folder, dotted in ROOTS.items():
        for init in sorted(Path(folder).rglob("__init__.py")):
            rel = init.parent.relative_to(folder).parts
            found.append(".".join((dotted, *rel)))
    return found


# city_configs/ is data (policies, tables, READMEs); it is installed as yibao.city_configs so
# that `yibao demo` finds a city policy on a machine that has only the installed package.
DATA_PACKAGES = {"yibao.city_configs": "city_configs"}
# `import yibao` (yibao.compile, yibao.settle): the top-level package is the one small
# folder yibao_api/, so yibao.core/dsl/plugins stay where they are.
API_PACKAGE = {"yibao": "yibao_api"}


def package_dir():
    mapping = {}
    for pkg in packages():
        root, *rest = pkg.split(".")[1:]
        mapping[pkg] = "/".join([root, *rest])
    mapping.update(DATA_PACKAGES)
    mapping.update(API_PACKAGE)
    return mapping


def cython_include_dir() -> str:
    """A tree in which ``yibao/core/_kernel.pxd`` exists, so Cython finds each module's .pxd
    under the dotted name the extension is built as (the sources live in core/, not yibao/core/)."""
    root = Path("build") / "cython_include"
    pkg = root / "yibao"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.pxd").touch()
    for folder in ROOTS:
        link = pkg / folder
        if not link.exists():
            link.symlink_to(Path("..", "..", "..", folder), target_is_directory=True)
    return str(root)


def extensions():
    exts = []
    for folder, dotted in ROOTS.items():
        for pyx in sorted(Path(folder).rglob("*.pyx")):
            rel = pyx.with_suffix("").relative_to(folder).parts
            exts.append(Extension(
                ".".join((dotted, *rel)), [str(pyx)],
                include_dirs=[numpy.get_include()],
                extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            ))
    directives = {"language_level": "3", "boundscheck": DEBUG, "wraparound": DEBUG,
                  "cdivision": True, "initializedcheck": DEBUG}
    return cythonize(exts, compiler_directives=directives, quiet=True,
                     include_path=[cython_include_dir()])


setup(
    packages=list(API_PACKAGE) + packages() + list(DATA_PACKAGES),
    package_dir=package_dir(),
    package_data={"": ["*.lark", "*.pickle", "*.pxd", "*.pyi", "data/*", "data/**/*", "*.json", "*.csv"],
                  "yibao.city_configs": ["*/*.yb", "*/*.csv", "*/*.yaml", "*/*.md"]},
    include_package_data=True,
    ext_modules=extensions(),
    zip_safe=False,
)
