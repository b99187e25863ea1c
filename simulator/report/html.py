"""The jinja2 environment every report page is rendered with (templates in ``templates/``,
autoescaped, undefined names an error). jinja2 is imported on first use."""

from __future__ import annotations

import functools
import pathlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2


@functools.cache
def environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(pathlib.Path(__file__).parent / "templates"),
        autoescape=True,  # select_autoescape would miss the ".html.j2" suffix
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
