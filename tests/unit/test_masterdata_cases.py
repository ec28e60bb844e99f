"""Master data regression cases as data: ``tests/cases/masterdata/<case>/`` holds

- ``masterdata.yaml``: the file plant IT wrote;
- ``expected_error.txt``: every rendered problem, one per line, in file order, exactly
  (``masterdata.yaml:LINE:COLUMN: field.path: message``). Without it the file must load.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.masterdata import MasterData, parse_masterdata
from lineside_common.yamlconfig import ConfigFileError

CASES_DIR = Path(__file__).parent.parent / "cases" / "masterdata"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_case(case: Path) -> None:
    text = (case / "masterdata.yaml").read_text(encoding="utf-8")
    expected = case / "expected_error.txt"
    if not expected.exists():
        assert isinstance(parse_masterdata(text, "masterdata.yaml"), MasterData)
        return
    with pytest.raises(ConfigFileError) as caught:
        parse_masterdata(text, "masterdata.yaml")
    rendered = [issue.render() for issue in caught.value.issues]
    assert rendered == expected.read_text(encoding="utf-8").splitlines()


def test_every_case_has_a_file_and_most_expect_an_error() -> None:
    assert all((case / "masterdata.yaml").is_file() for case in CASES)
    assert sum((case / "expected_error.txt").is_file() for case in CASES) >= 8
