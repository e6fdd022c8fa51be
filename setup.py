"""Which packages the distribution holds; everything else is in ``pyproject.toml``.

``deploy/`` stays at the top of the repository but is installed as the package
``newsflow_deploy`` (read through ``streams.resources``). ``pyproject.toml`` alone cannot say
that and still discover the packages: ``packages.find`` only finds directories under their own
name, and an explicit list would silently drop the next new subpackage from the wheel.
Data-only directories are listed as (namespace) packages too, as setuptools asks; which files
they contribute is decided by ``package-data`` in ``pyproject.toml``.
"""

from setuptools import find_namespace_packages, setup


def _data_dirs(where: str) -> list[str]:
    """Subdirectories of ``where`` whose names are importable (not Maven's target/)."""
    found = find_namespace_packages(where=where, exclude=["*target*", "*__pycache__*"])
    return [name for name in found if all(part.isidentifier() for part in name.split("."))]


setup(
    packages=[
        *find_namespace_packages(
            include=["streams", "streams.*", "connectors", "connectors.*"],
            exclude=["*__pycache__*"],
        ),
        "newsflow_deploy",
        *(f"newsflow_deploy.{name}" for name in _data_dirs("deploy")),
    ],
    package_dir={"newsflow_deploy": "deploy"},
)
