"""The packages the ``anonpriv`` distribution installs; everything else is in pyproject.toml.

The baselines live in the repository's top-level ``baselines/`` folder but are installed as
``anonpriv.baselines`` (pyproject.toml's ``package-dir`` maps that package to the folder), so nothing
named ``baselines`` lands at the top of ``site-packages``. pyproject.toml's ``packages.find`` does not
follow such a mapping, hence this list: every package under ``anonpriv/`` and under ``baselines/``.
"""

from setuptools import find_namespace_packages, setup

BASELINES = ["anonpriv.baselines"] + [f"anonpriv.baselines.{name}" for name in find_namespace_packages(where="baselines")]

setup(packages=find_namespace_packages(include=["anonpriv", "anonpriv.*"]) + BASELINES)
