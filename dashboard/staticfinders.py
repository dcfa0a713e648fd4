"""plotly.js from the installed plotly package, as the static file ``plotly/plotly.min.js``.

Only that one file: the package's data folder also holds a 4.8 MB widget bundle, datasets and
templates that no page uses, which collectstatic would otherwise hash and compress as well.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

NAME = "plotly/plotly.min.js"


def plotly_folder() -> Path:
    return Path(find_spec("plotly").submodule_search_locations[0]) / "package_data"


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=str(plotly_folder()))
        self.storage.prefix = "plotly"

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if path != NAME:
            return [] if find_all else None
        found = str(plotly_folder() / "plotly.min.js")
        return [found] if find_all else found

    def list(self, ignore_patterns):
        yield "plotly.min.js", self.storage
