"""`cokreat-jobs --version`: the package version, written once (cokreat_jobs.__version__)."""

from __future__ import annotations

from importlib.metadata import version

from click.testing import CliRunner

from cokreat_jobs import __version__
from cokreat_jobs.cli.main import main


def test_version_prints_the_package_version_alone() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"{__version__}\n"
    # the installed distribution's metadata takes it from the same place
    assert version("cokreat-jobs") == __version__
