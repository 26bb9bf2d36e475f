"""What pyproject.toml cannot say: the Hydra config tree conf/ ships inside the wheel as the package data of
radscreen.conf (radscreen/conf/ once installed), so the installed commands find it. conf/local/ (a site's own
settings, git-ignored) stays out. Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, find_packages, setup

CONFIG_PACKAGES = ["radscreen.conf", *(f"radscreen.conf.{group}"
                                      for group in find_namespace_packages("conf", exclude=["local", "local.*"]))]

setup(
    packages=[*find_packages("src"), *CONFIG_PACKAGES],
    package_dir={"": "src", "radscreen.conf": "conf"},
    package_data={name: ["*.yaml"] for name in CONFIG_PACKAGES},
)
