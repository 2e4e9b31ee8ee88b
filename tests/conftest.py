"""For every test run: nothing a test started outlives the run, pass or fail.

Every process a test starts names a folder under pytest's base temporary folder on its command
line (its certificates, its state, its logs). Fixtures stop what they start, failing or not;
this is the net under them: at the very end of the session, anything still naming that folder
is stopped, and the run reports it as an error, since a leak is a bug of the test that made it.

Property tests have no deadline: Hypothesis's default (200 ms an example) fails a correct test
on a loaded machine (a conversion property failed that way once with four suites beside it),
and speed is measured by the benchmarks, never by a test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.support.processes import stop_processes_mentioning

settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    base = str(tmp_path_factory.getbasetemp())
    yield
    left = stop_processes_mentioning(base)
    assert not left, f"processes left running by the tests (now stopped): {left}"
