"""Schemathesis hooks (schemathesis.toml): what a generator cannot make up."""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.generation.meta import TestPhase


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Two values are only valid as the server hands them out, and any other is rightly
    refused; a generated "valid" one would be reported as a failure:
    - `cursor`, a signed token from a `next`/`previous` link (400; so is `cursor` beside
      `page`, which the schema cannot forbid). Cursors: tests/test_appuser_list.py.
    - `If-Match`, an ETag (412), except in the stateful phase, where the document's links
      pass the ETag of the previous answer."""
    if case.query:
        case.query.pop("cursor", None)
    stateful = case.meta is not None and case.meta.phase.name == TestPhase.STATEFUL
    if case.headers and not stateful:
        case.headers.pop("If-Match", None)
    return case
