"""Tests of graph.contracts: parsing, the construct whitelist, evaluation and failure messages."""

from __future__ import annotations

import pydantic
import pytest

from graph.contracts import Contract, check_contracts
from graph.errors import ContractError


class Sub(pydantic.BaseModel):
    bin_size: int = 32


class Connections(pydantic.BaseModel):
    post_isr: str = "postISRCCD"


class IsrLike(pydantic.BaseModel):
    do_flat: bool = True
    saturation: int = 65535
    scale: float = 1.5
    bands: list[str] = ["g", "r"]
    weights: dict[str, float] = {"g": 1.0, "r": 2.0}
    note: str | None = None
    background: Sub = Sub()
    connections: Connections = Connections()


class CalibrateLike(pydantic.BaseModel):
    do_flat: bool = True
    threshold: float = 5.0
    connections: Connections = Connections()


@pytest.fixture
def configs() -> dict[str, pydantic.BaseModel]:
    return {"isr": IsrLike(), "calibrate": CalibrateLike()}


@pytest.mark.parametrize(
    "expression",
    [
        "isr.do_flat == calibrate.do_flat or not isr.do_flat",
        "isr.saturation > 1000 and isr.scale * 2 == 3.0",
        "isr.saturation // 1000 == 65 and isr.saturation % 2 == 1 and -isr.scale < 0",
        "'g' in isr.bands and 'z' not in isr.bands",
        "isr.note is None and isr.background is not None",
        "isr.bands[0] == 'g' and isr.weights['r'] == 2.0",
        "len(isr.bands) == 2 and max(isr.weights['g'], 3) == 3 and abs(-1) == 1",
        "all([isr.do_flat, calibrate.do_flat]) and any((False, True)) and sum([1, 2]) == 3",
        "isr.background.bin_size == 32",
        "isr.connections.post_isr == calibrate.connections.post_isr",
        "1 < isr.scale < 2",
        "(isr.saturation if isr.do_flat else 0) == 65535",
        "isr.bands + ['i'] == ['g', 'r', 'i']",
        "{'a': 1}['a'] == 1 and {1, 2} == {2, 1}",
    ],
)
def test_true_contracts(expression: str, configs: dict[str, pydantic.BaseModel]) -> None:
    contract = Contract.parse(expression)
    assert contract.evaluate(configs) is True
    contract.check(configs)


def test_labels_are_root_names() -> None:
    contract = Contract.parse("isr.do_flat == calibrate.do_flat or len(isr.bands) > 0")
    assert contract.labels == {"isr", "calibrate"}


def test_false_contract_message_shows_expression_msg_and_values(
    configs: dict[str, pydantic.BaseModel],
) -> None:
    configs["calibrate"] = CalibrateLike(do_flat=False)
    contract = Contract.parse(
        "isr.do_flat == calibrate.do_flat", msg="flat-fielding must agree", source="pipe.yaml"
    )
    with pytest.raises(ContractError) as info:
        contract.check(configs)
    text = str(info.value)
    assert "Contract failed: isr.do_flat == calibrate.do_flat" in text
    assert "flat-fielding must agree" in text
    assert "isr.do_flat=True" in text and "calibrate.do_flat=False" in text
    assert "pipe.yaml" in text


def test_check_contracts_lists_every_failure(configs: dict[str, pydantic.BaseModel]) -> None:
    contracts = [
        Contract.parse("isr.saturation < 10"),
        Contract.parse("isr.do_flat"),
        Contract.parse("False"),
    ]
    with pytest.raises(ContractError) as info:
        check_contracts(contracts, configs)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert "isr.saturation < 10" in lines[0] and "False" in lines[1]


@pytest.mark.parametrize(
    ("expression", "construct"),
    [
        ("__import__('os').system('true')", "a call to __import__('os').system()"),
        ("isr.do_flat.__class__", "private attribute"),
        ("[x for x in isr.bands]", "list comprehension"),
        ("(lambda: 1)()", "a call to lambda: 1()"),
        ("lambda: 1", "lambda"),
        ("isr.bands.append('z')", "a call to isr.bands.append()"),
        ("2 ** 100000", "operator Pow"),
        ("isr.bands[0:1]", "slice"),
        ("f'{isr.do_flat}'", "f-string"),
        ("len(*isr.bands)", "starred expression"),
        ("max(isr.bands, key=len)", "(keyword arguments)"),
        ("(y := 1)", "assignment expression"),
        ("~isr.saturation", "unary operator Invert"),
        ("isr.saturation << 2", "operator LShift"),
    ],
)
def test_refused_constructs(expression: str, construct: str) -> None:
    with pytest.raises(ContractError, match="contracts do not allow") as info:
        Contract.parse(expression, source="p.yaml")
    assert construct in str(info.value)
    assert "p.yaml" in str(info.value)


def test_syntax_error_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="not a valid expression"):
        Contract.parse("isr.do_flat ==")
    with pytest.raises(ContractError, match="non-empty"):
        Contract.parse("  ")


def test_unknown_label_and_field_are_named_with_suggestions(configs: dict[str, pydantic.BaseModel]) -> None:
    with pytest.raises(ContractError, match=r"'isrr' is not a task label.*did you mean 'isr'"):
        Contract.parse("isrr.do_flat").evaluate(configs)
    with pytest.raises(ContractError, match=r"isr has no config field 'do_flt'; did you mean 'do_flat'"):
        Contract.parse("isr.do_flt").evaluate(configs)


def test_attribute_access_only_on_configs(configs: dict[str, pydantic.BaseModel]) -> None:
    with pytest.raises(ContractError, match="is a list value, not a config"):
        Contract.parse("isr.bands.real").evaluate(configs)
    with pytest.raises(ContractError, match=r"no item 'z'"):
        Contract.parse("isr.weights['z'] == 1").evaluate(configs)


def test_evaluation_errors_are_contract_errors(configs: dict[str, pydantic.BaseModel]) -> None:
    with pytest.raises(ContractError, match="arithmetic needs numbers"):
        Contract.parse("isr.bands * 1000000000").evaluate(configs)
    with pytest.raises(ContractError, match="cannot be evaluated: TypeError"):
        Contract.parse("isr.bands < 3").evaluate(configs)
    with pytest.raises(ContractError, match="cannot be evaluated: ZeroDivisionError"):
        Contract.parse("isr.saturation / 0").evaluate(configs)
    with pytest.raises(ContractError, match="must be called"):
        Contract.parse("len == 1").evaluate(configs)
