"""ConfigTable: the one reader of CIO_CONFIG tables; a bad value is one sentence naming table and key."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, ConfigTable, Settings


def refused(table: ConfigTable, read) -> str:
    with pytest.raises(ConfigError) as info:
        read(table)
    return str(info.value)


def test_absent_keys_read_as_their_defaults():
    table = Settings().table("anything")
    assert table.number("n", 2.5, 0, 10) == 2.5
    assert table.integer("i", 7, 1) == 7
    assert table.boolean("b", True) is True
    assert table.string("s", "key") == "key"
    assert table.text("t") is None
    assert table.choice("c", "a", ("a", "b")) == "a"


def test_present_values_are_read():
    table = ConfigTable("x", {"n": 3, "i": 2.0, "b": False, "s": "name", "t": "  some text ", "blank": " ",
                              "c": "b"})
    assert table.number("n", 0, 0, 10) == 3.0 and isinstance(table.number("n", 0, 0, 10), float)
    assert table.integer("i", 0, 0) == 2
    assert table.boolean("b", True) is False
    assert table.string("s", "") == "name"
    assert table.text("t") == "some text" and table.text("blank") is None
    assert table.choice("c", "a", ("a", "b")) == "b"


def test_bad_values_are_refused_with_one_sentence():
    table = ConfigTable("demo", {"n": 11, "flag": True, "neg": -1, "b": "no", "s": "", "t": 5, "c": "z"})
    assert refused(table, lambda t: t.number("n", 0, 0.5, 10)) == (
        "[demo] n in CIO_CONFIG must be a number from 0.5 to 10, got 11.")
    assert "must be a number from 0 to 10, got True" in refused(table, lambda t: t.number("flag", 0, 0, 10))
    assert refused(table, lambda t: t.integer("neg", 0, 0)) == (
        "[demo] neg in CIO_CONFIG must be a whole number ≥ 0, got -1.")
    assert refused(ConfigTable("demo", {"i": 2.9}), lambda t: t.integer("i", 0, 0, 9)) == (
        "[demo] i in CIO_CONFIG must be a whole number from 0 to 9, got 2.9.")
    assert refused(table, lambda t: t.boolean("b", True)) == "[demo] b in CIO_CONFIG must be true or false, got 'no'."
    assert refused(table, lambda t: t.string("s", "x")) == "[demo] s in CIO_CONFIG must be a non-empty string, got ''."
    assert refused(table, lambda t: t.text("t")) == "[demo] t in CIO_CONFIG must be a string, got 5."
    assert refused(table, lambda t: t.choice("c", "a", ("a", "b"))) == (
        '[demo] c in CIO_CONFIG must be "a" or "b", got \'z\'.')


def test_unknown_keys_are_refused_naming_the_known_ones():
    ConfigTable("demo", {"a": 1}).reject_unknown({"a", "b"})
    assert refused(ConfigTable("demo", {"a": 1, "typo": 2, "other": 3}), lambda t: t.reject_unknown({"a", "b"})) == (
        "[demo] in CIO_CONFIG has unknown key(s) other, typo; known keys are a, b.")


def test_a_table_that_is_not_a_table_reads_as_empty():
    assert Settings(file={"checks": 5}).table("checks").values == {}
