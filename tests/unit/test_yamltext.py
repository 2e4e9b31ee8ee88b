"""YAML text: every failure is one line that says where and why, never a crash inside PyYAML."""

from __future__ import annotations

import pytest

from clusterip_guard.yamltext import YAMLTextError, load_yaml, load_yaml_documents


def test_dates_stay_strings_as_kubernetes_reads_them() -> None:
    assert load_yaml("expires: 2027-02-30") == {"expires": "2027-02-30"}
    assert load_yaml("at: 2027-01-01 10:00:00") == {"at": "2027-01-01 10:00:00"}


def test_shared_nodes_are_fine() -> None:
    assert load_yaml("a: &x [1]\nb: *x") == {"a": [1], "b": [1]}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("key: [unclosed", "at line 1, column", id="unclosed flow sequence"),
        pytest.param("a: !!timestamp 2027-02-30", "day is out of range", id="explicit bad date"),
        pytest.param("a: !!float x", "could not convert", id="explicit float that is not"),
        pytest.param("a: !!python/object:os.system x", "could not determine", id="unsafe tag"),
        pytest.param("[" * 5000, "not valid YAML", id="nested too deeply"),
        pytest.param("a: &a [*a]", "refers to the node that contains it", id="self-reference"),
        pytest.param("? [a]\n: 1", "unhashable key", id="a list as a key"),
    ],
)
def test_bad_yaml_is_one_line(text: str, says: str) -> None:
    with pytest.raises(YAMLTextError) as caught:
        load_yaml_documents(text)
    message = str(caught.value)
    assert says in message
    assert message.startswith("not valid YAML")
    assert "\n" not in message
