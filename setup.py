"""Build glue that pyproject.toml cannot express: the one-line ``autologagent.pth``.

The ``.pth`` must sit at the top of site-packages (not inside the package) so that
every Python process of the environment reads it at start-up; that is what makes
``AUTOLOG=1 python train.py`` work. setuptools copies package files only, so
``build_py`` copies the ``.pth`` too: into the wheel's root for ``pip install .``,
and into the editable wheel for ``pip install -e .``.
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_FILE = "autologagent.pth"


class build_py_with_pth(build_py):
    def run(self) -> None:
        super().run()
        target = self.build_lib
        if getattr(self, "editable_mode", False):
            target = self.get_finalized_command("install").install_lib
        self.copy_file(PTH_FILE, os.path.join(target, PTH_FILE), preserve_mode=False)


setup(cmdclass={"build_py": build_py_with_pth})
