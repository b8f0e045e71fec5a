"""Which packages the wheel holds; the rest of the metadata is in setup.cfg.

Every package under ``minigru/`` is found, so a new subpackage cannot be left out of the wheel
by forgetting to list it. The demos live in the top-level ``demos/`` folder, where a learner
finds them, and are installed as ``minigru.demos``.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["minigru", "minigru.*"]) + ["minigru.demos"],
      package_dir={"minigru.demos": "demos"})
