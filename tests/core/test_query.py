"""Tests of the query language: parser, Python backend, SQLite backend and their agreement."""

from __future__ import annotations

import calendar
import re
import sqlite3
from collections.abc import Iterable, Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelkb.errors import QuerySyntaxError, UnknownFieldError
from modelkb.fields import flatten, text_form, to_number
from modelkb.query import (
    DATE_RE,
    FIELDS_DDL,
    And,
    Compare,
    Not,
    Or,
    Query,
    compile_predicate,
    compile_sql,
    field_rows,
    parse,
)


def experiment(name: str, **sections: object) -> dict[str, object]:
    """A flattened experiment with the given top-level metadata sections."""
    return flatten({"name": name, **sections})


def run(name: str, *, epochs: int, optimizer: str | None, accuracy: float, **extra: object) -> dict:
    hyper: dict[str, object] = {"epochs": epochs}
    if optimizer is not None:
        hyper["optimizer"] = {"name": optimizer}
    metrics = {"final": {"accuracy": accuracy}}
    return experiment(name, hyperparameters=hyper, metrics=metrics, **extra)


RUNS = [
    run(
        "r1",
        epochs=20,
        optimizer="Adam",
        accuracy=0.95,
        created="2026-11-01T10:00:00Z",
        tags=["cnn", "baseline"],
        context={"git": {"dirty": True, "branch": "main"}},
        notes='said "hi" \\ left',
        user="Ada Lovelace",
    ),
    run(
        "r2",
        epochs=5,
        optimizer="adam",
        accuracy=0.97,
        created="2026-11-01T23:59:59.500Z",
        tags=["mlp"],
        context={"git": {"dirty": False}},
        user="alan",
    ),
    run(
        "r3",
        epochs=15,
        optimizer="SGD",
        accuracy=0.99,
        created="2026-11-02T00:00:00Z",
        notes="100% done_ok",
    ),
    run("r4", epochs=30, optimizer="ADAM", accuracy=0.85, created="2026-10-31T08:30:00+02:00"),
    run("r5", epochs=12, optimizer=None, accuracy=0.91, seed=7),
]
KNOWN = sorted({key for flat in RUNS for key in flat})


def sqlite_select(
    query: str, records: list[Mapping[str, object]], known: Iterable[str]
) -> set[int]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE experiments(id INTEGER PRIMARY KEY)")
    for statement in FIELDS_DDL:
        db.execute(statement)
    for index, flat in enumerate(records):
        db.execute("INSERT INTO experiments(id) VALUES (?)", (index,))
        db.executemany(
            "INSERT INTO fields(exp, key, num, txt) VALUES (?, ?, ?, ?)",
            [(index, *row) for row in field_rows(flat)],
        )
    sql, params = compile_sql(parse(query), known, query=query)
    rows = db.execute(f"SELECT e.rowid FROM experiments AS e WHERE {sql}", params).fetchall()
    db.close()
    return {row[0] for row in rows}


def select(query: str, records: list[dict] = RUNS) -> set[str]:
    """Names matched by both backends, which must agree."""
    predicate = compile_predicate(parse(query), KNOWN, query=query)
    by_python = {index for index, flat in enumerate(records) if predicate(flat)}
    assert sqlite_select(query, records, KNOWN) == by_python, query
    return {str(records[index]["name"]) for index in by_python}


def test_paper_query() -> None:
    query = "epochs > 10 && optimizer = Adam && accuracy > 0.9"
    assert select(query) == {"r1"}
    assert Query(query).fields == ("epochs", "optimizer", "accuracy")


def test_paper_query_on_raw_metadata() -> None:
    metadata = {
        "hyperparameters": {"epochs": 12, "optimizer": {"name": "Adam", "config": {}}},
        "metrics": {"final": {"accuracy": 0.93, "loss": 0.2}},
    }
    flat = flatten(metadata)
    query = Query("epochs > 10 && optimizer = Adam && accuracy > 0.9")
    assert query.predicate(flat)(flat) is True
    assert query.predicate([])(flat) is True  # no key information: aliases still apply


def test_parse_tree_and_precedence() -> None:
    node = parse("a = 1 || b = 2 && c = 3")
    a, b, c = (
        Compare(n, "=", float(v), "number", col)
        for n, v, col in (("a", 1, 1), ("b", 2, 10), ("c", 3, 19))
    )
    assert node == Or(a, And(b, c))
    assert parse("(a = 1 || b = 2) && c = 3") == And(
        Or(Compare("a", "=", 1.0, "number", 2), Compare("b", "=", 2.0, "number", 11)),
        Compare("c", "=", 3.0, "number", 21),
    )
    assert parse("!a = 1") == Not(Compare("a", "=", 1.0, "number", 2))
    assert parse("a=1 or b=2 AND NOT c=3") == Or(
        Compare("a", "=", 1.0, "number", 1),
        And(Compare("b", "=", 2.0, "number", 8), Not(Compare("c", "=", 3.0, "number", 20))),
    )
    assert parse("a = 1 && b = 2 && c = 3") == And(
        And(Compare("a", "=", 1.0, "number", 1), Compare("b", "=", 2.0, "number", 10)),
        Compare("c", "=", 3.0, "number", 19),
    )


def test_precedence_semantics() -> None:
    assert select("epochs < 10 || optimizer = sgd && accuracy > 0.98") == {"r2", "r3"}
    assert select("(epochs < 10 || optimizer = sgd) && accuracy > 0.98") == {"r3"}
    assert select("epochs < 10 or optimizer = sgd and accuracy > 0.98") == {"r2", "r3"}


def test_not_and_missing_fields() -> None:
    assert select("!(optimizer = adam)") == {"r3", "r5"}
    assert select("not optimizer = adam") == {"r3", "r5"}
    assert select("optimizer != adam") == {"r3"}  # missing field: comparison is false
    assert select("optimizer = null") == {"r5"}
    assert select("optimizer != NONE") == {"r1", "r2", "r3", "r4"}
    assert select("!!(epochs > 10)") == {"r1", "r3", "r4", "r5"}
    assert select("seed = 7") == {"r5"}
    assert select("seed > 0 || seed <= 0") == {"r5"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("epochs = 20", {"r1"}),
        ("epochs == 20", {"r1"}),
        ("epochs != 20", {"r2", "r3", "r4", "r5"}),
        ("epochs > 15", {"r1", "r4"}),
        ("epochs >= 15", {"r1", "r3", "r4"}),
        ("epochs < 12", {"r2"}),
        ("epochs <= 12", {"r2", "r5"}),
        ("epochs = 2e1", {"r1"}),
        ("accuracy >= .97", {"r2", "r3"}),
        ("epochs > -1", {"r1", "r2", "r3", "r4", "r5"}),
        ("optimizer ~ ada", {"r1", "r2", "r4"}),
        ("optimizer !~ ada", {"r3"}),
        ("tags ~ cnn", {"r1"}),
        ("tags ~ 'CNN, base'", {"r1"}),
        ("epochs ~ 0", {"r1", "r4"}),  # text forms "20", "30"
        ("accuracy ~ 0.9", {"r1", "r2", "r3", "r5"}),
        ("optimizer > b", {"r3"}),
        ("optimizer < B", {"r1", "r2", "r4"}),
        ("optimizer <= ADAM", {"r1", "r2", "r4"}),
        ("optimizer >= adam", {"r1", "r2", "r3", "r4"}),
        ("epochs = '20'", {"r1"}),  # quoted: text comparison
        ("epochs = 'abc'", set()),
        ("optimizer = 1", set()),  # number against non-numeric text is false
        ("optimizer != 1", set()),
    ],
)
def test_every_operator(query: str, expected: set[str]) -> None:
    assert select(query) == expected


def test_bools() -> None:
    assert select("context.git.dirty = true") == {"r1"}
    assert select("dirty = FALSE") == {"r2"}
    assert select("dirty = 1") == {"r1"}
    assert select("dirty != true") == {"r2"}
    assert select("dirty ~ tru") == {"r1"}


def test_dates() -> None:
    # r1 2026-11-01T10:00Z, r2 2026-11-01T23:59:59.5Z, r3 2026-11-02T00:00Z, r4 2026-10-31T06:30Z
    assert select("created = 2026-11-01") == {"r1", "r2"}
    assert select("created != 2026-11-01") == {"r3", "r4"}
    assert select("created > 2026-11-01") == {"r3"}
    assert select("created >= 2026-11-01") == {"r1", "r2", "r3"}
    assert select("created < 2026-11-01") == {"r4"}
    assert select("created <= 2026-11-01") == {"r1", "r2", "r4"}
    assert select("created = 2026-11-01T10:00") == {"r1"}
    assert select("created >= 2026-11-01T10:00:01") == {"r2", "r3"}
    assert select("date < 2026-10-31T06:30:00Z") == set()
    assert select("date = 2026-10-31T06:30:00z") == {"r4"}
    assert select("created ~ 2026-11") == {"r1", "r2", "r3"}  # ~ compares text
    assert select("created > '2026-11-01T12'") == {"r2", "r3"}  # quoted: text order
    assert select(f"created > {calendar.timegm((2026, 11, 1, 12, 0, 0))}") == {"r2", "r3"}
    node = parse("created = 2026-11-01T10:00")
    start = calendar.timegm((2026, 11, 1, 10, 0, 0))
    assert node == Compare("created", "=", (start, start + 60), "date", 1)


def test_quoted_strings() -> None:
    assert select("user = 'Ada Lovelace'") == {"r1"}
    assert select('user = "ada lovelace"') == {"r1"}
    assert select(r'notes = "said \"hi\" \\ left"') == {"r1"}
    assert select(r"notes ~ '\"hi\"'") == {"r1"}
    assert select("notes ~ '100%'") == {"r3"}
    assert select("notes ~ '0%'") == {"r3"}
    assert select("notes ~ '%'") == {"r3"}
    assert select("notes ~ 'e_o'") == {"r3"}
    assert select("notes ~ 'x_y'") == set()  # '_' is not a wildcard
    assert select(r"notes ~ '\\'") == {"r1"}
    assert parse(r"a = 'x\ny\t\q'") == Compare("a", "=", "x\ny\tq", "string", 1)
    assert parse("a = '&& || ( ) !'") == Compare("a", "=", "&& || ( ) !", "string", 1)


def test_case_insensitive_fields_and_values() -> None:
    assert select("EPOCHS > 10 && Optimizer = aDaM") == {"r1", "r4"}
    assert select("Hyperparameters.Optimizer.Name ~ DA") == {"r1", "r2", "r4"}
    # only ASCII letters fold, exactly like SQLite's NOCASE and LIKE
    records = [experiment("u", user="ÉLAN"), experiment("l", user="élan")]
    assert select("user = 'ÉLan'", records) == {"u"}
    assert select("user = 'Élan'", records) == {"u"}
    assert select("user = 'ÉLAN'", records) == {"u"}
    assert select("user ~ 'LAN'", records) == {"u", "l"}


def test_bare_words_and_keywords() -> None:
    assert parse("optimizer = Adam") == Compare("optimizer", "=", "Adam", "string", 1)
    assert parse("x = a-b_c.d/e:f") == Compare("x", "=", "a-b_c.d/e:f", "string", 1)
    assert parse("x = 'and'") == Compare("x", "=", "and", "string", 1)
    assert parse("x ~ 1e3").value == "1e3"  # after ~ the value is text as written
    assert parse("x = 1e3").value == 1000.0
    assert parse("x = tRuE") == Compare("x", "=", True, "bool", 1)
    assert parse("x!=None") == Compare("x", "!=", None, "null", 1)


def test_unknown_field() -> None:
    expected = r"unknown field 'optimiser'; did you mean 'optimizer'"
    with pytest.raises(UnknownFieldError, match=expected) as info:
        Query("epochs > 1 && optimiser = adam").predicate(KNOWN)
    assert info.value.column == 15
    with pytest.raises(UnknownFieldError, match=r"unknown field 'qqqqqq' at column 1"):
        Query("qqqqqq = 1").sql(KNOWN)
    assert isinstance(info.value, QuerySyntaxError)


def test_sql_uses_parameters_only() -> None:
    sql, params = Query("user = \"x'); DROP TABLE fields; --\" || notes ~ 'a%_'").sql(KNOWN)
    assert "DROP" not in sql and "a%" not in sql
    assert params == ["user", "x'); DROP TABLE fields; --", "notes", "%a\\%\\_%"]
    assert select('user = "x\'); DROP TABLE fields; --"') == set()


@pytest.mark.parametrize(
    ("query", "column", "reason"),
    [
        ("", 1, "empty query"),
        ("   ", 1, "empty query"),
        ("epochs >", 9, "missing value after '>', found the end of the query"),
        ("epochs > && a = 1", 10, "missing value after '>'"),
        ("(epochs > 1", 1, "unclosed '('"),
        ("a = 1 && ((b = 2) || c = 3", 10, "unclosed '('"),
        ("epochs > 1)", 11, "unbalanced ')'"),
        ("name = 'abc", 8, "unterminated string"),
        ('name = "ab\\"', 8, "unterminated string"),
        ("a = 1 & b = 2", 7, "unexpected '&'"),
        ("a = 1 | b = 2", 7, "unexpected '|'"),
        ("epochs 10", 8, "expected an operator"),
        ("= 10", 1, "expected a field name, found '='"),
        ("a = 1 && && b = 2", 10, "expected a field name, found '&&'"),
        ("a = 1 b = 2", 7, "unexpected 'b'; expected '&&', '||' or the end"),
        ("(a = 1 b = 2)", 8, "unexpected 'b'; expected '&&', '||' or ')'"),
        ("()", 2, "expected a field name, found ')'"),
        ("a = 1 &&", 9, "expected a field name, found the end of the query"),
        ("a/b = 1", 1, "invalid field name 'a/b'"),
        ("'a' = 1", 1, "expected a field name, found 'a'"),
        ("a > null", 5, "'null' can only be compared with '=' or '!='"),
        ("created > 2026-02-30", 11, "invalid date '2026-02-30'"),
        ("a =< 1", 4, "missing value after '=', found '<'"),
        ("user = ADA' 'LOVELACE", 11, "unexpected ' '"),
        ("!" * 70 + "a = 1", 65, "query nested more than 64 deep"),
    ],
)
def test_syntax_errors(query: str, column: int, reason: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse(query)
    assert info.value.column == column
    assert info.value.reason.startswith(reason)
    assert info.value.query == query
    assert not isinstance(info.value, UnknownFieldError)


def test_error_message_points_at_column() -> None:
    with pytest.raises(QuerySyntaxError, match=r"at column 4\n  a =\n     \^"):
        parse("a =")


def test_long_chains_do_not_recurse() -> None:
    query = " && ".join(["epochs > 1"] * 3000)
    predicate = Query(query).predicate(KNOWN)
    assert predicate(RUNS[0])
    assert select(" || ".join(["epochs > 100"] * 3000 + ["epochs = 5"])) == {"r2"}


# --- property tests: both backends agree on random records and random queries ---

KEYS = ["a", "b.c", "created"]
QUERY_FIELDS = [*KEYS, "A", "c", "B.C", "Created"]
ALPHABET = "aAzZ%_\\ 'é\"É1.-"
DATES = [
    "2026-11-01",
    "2026-11-01T10:00",
    "2026-11-01T10:00:30",
    "2026-10-31",
    "2026-10-31T23:59:59Z",
    "2026-11-01T00:00:00Z",
    "2026-11-01T09:59:59",
]
field_values = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.0, -0.0, 0.5, 2.5, 1e-05, 1e300, float("inf"), float("-inf"), float("nan")]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(ALPHABET, max_size=4),
    st.sampled_from(
        [
            *DATES,
            "1",
            "01",
            "1.0",
            "-2",
            "1e3",
            " 1",
            "true",
            "abc",
            "ABC",
            "É",
            "é",
            "2026-11-01T10:00:30.5+01:00",
            "2026-13-01",
            "a%b",
            "a_b",
            "axb",
        ]
    ),
)
records_strategy = st.lists(
    st.dictionaries(st.sampled_from(KEYS), field_values, max_size=3), max_size=10
)


def quote(text: str, mark: str) -> str:
    return mark + text.replace("\\", "\\\\").replace(mark, "\\" + mark) + mark


value_texts = st.one_of(
    st.sampled_from(
        [
            *DATES,
            "0",
            "1",
            "-2",
            "0.5",
            "2.5",
            "1e3",
            "-0",
            ".5",
            "1e-05",
            "inf",
            "abc",
            "A",
            "é",
            "É",
            "a%b",
            "a_b",
            "a",
            "Z",
            "%",
            "_",
            "'\\\\'",
            "''",
            "true",
            "FALSE",
            "2026-11",
            "null",
            "None",
        ]
    ),
    st.integers(-3, 3).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(quote, st.text(ALPHABET, max_size=3), st.sampled_from(["'", '"'])),
)
operators = st.sampled_from(["=", "==", "!=", ">", ">=", "<", "<=", "~", "!~"])


def comparison(field: str, op: str, value: str) -> str:
    if value.lower() in ("null", "none") and op not in ("=", "==", "!="):
        op = "="  # null only goes with = and !=
    return f"{field} {op} {value}"


comparisons = st.builds(comparison, st.sampled_from(QUERY_FIELDS), operators, value_texts)
queries = st.recursive(
    comparisons,
    lambda inner: st.one_of(
        st.builds(
            lambda a, op, b: f"({a}) {op} ({b})",
            inner,
            st.sampled_from(["&&", "||", "and", "OR"]),
            inner,
        ),
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["&&", "||"]), inner),
        st.builds(lambda neg, a: f"{neg}({a})", st.sampled_from(["!", "not ", "! "]), inner),
    ),
    max_leaves=6,
)


def assert_backends_agree(records: list[dict], query: str) -> None:
    predicate = Query(query).predicate(KEYS)
    by_python = {index for index, flat in enumerate(records) if predicate(flat)}
    assert sqlite_select(query, records, KEYS) == by_python


WORD_RE = re.compile(r"[^ \t\r\n()&|!=<>~'\"]+")


@st.composite
def literal_from(draw: st.DrawFn, values: list[object]) -> str:
    """A literal cut from one of the values: a slice, maybe case-swapped, bare when possible."""
    text = text_form(draw(st.sampled_from(values)))
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, len(text)))
    piece = text[start:end] if draw(st.booleans()) else text
    if draw(st.booleans()):
        piece = piece.swapcase()
    bare = (
        WORD_RE.fullmatch(piece)
        and piece.lower() not in ("and", "or", "not")
        and not (DATE_RE.fullmatch(piece) and to_number(piece) is None)  # e.g. 2026-13-01
    )
    if bare and draw(st.booleans()):
        return piece
    return quote(piece, draw(st.sampled_from(["'", '"'])))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(field_values, max_size=12), op=operators, data=st.data())
def test_backends_agree_on_one_comparison(
    values: list[object], op: str, data: st.DataObject
) -> None:
    literals = st.one_of(value_texts, literal_from(values)) if values else value_texts
    query = comparison("a", op, data.draw(literals, label="literal"))
    assert_backends_agree([{"a": item} for item in values] + [{}], query)


TRICKY = [
    "É",
    "é",
    "ÉLAN",
    "élan",
    "Élan",
    "a_b",
    "axb",
    "a%b",
    "aXb",
    "a\\b",
    "'",
    '"',
    "",
    " ",
    "ß",
    "SS",
    "Z",
    "a",
    "_",
    "%",
    "1",
    "1.0",
    "10",
    "9",
    "true",
    "NaN",
    "2026-11-01",
]


def test_backends_agree_on_tricky_strings() -> None:
    records = [{"a": text} for text in TRICKY] + [{"a": 1}, {"a": 1.0}, {"a": True}, {}]
    for op in ["=", "!=", ">", ">=", "<", "<=", "~", "!~"]:
        for text in TRICKY:
            assert_backends_agree(records, comparison("a", op, quote(text, "'")))
            if WORD_RE.fullmatch(text):
                assert_backends_agree(records, comparison("a", op, text))


def test_backends_agree_on_date_boundaries() -> None:
    stamps = [
        "2026-10-31T23:59:59Z",
        "2026-10-31T23:59:59.999Z",
        "2026-11-01",
        "2026-11-01T00:00:00Z",
        "2026-11-01T00:00:01Z",
        "2026-11-01T09:59:59Z",
        "2026-11-01T10:00:00Z",
        "2026-11-01T10:00:30Z",
        "2026-11-01T10:01:00Z",
        "2026-11-01T11:00:00+01:00",
        "2026-11-01T23:59:59.5Z",
        "2026-11-02T00:00:00Z",
        "not a date",
    ]
    records = [{"created": stamp} for stamp in stamps] + [{}]
    for op in ["=", "!=", ">", ">=", "<", "<=", "~", "!~"]:
        for literal in DATES:
            assert_backends_agree(records, comparison("created", op, literal))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=records_strategy, query=queries)
def test_backends_agree_on_compound_queries(records: list[dict], query: str) -> None:
    assert_backends_agree(records, query)


@settings(max_examples=200, deadline=None)
@given(text=st.text(" ab=<>!~&|()'\"\\1.-", max_size=12))
def test_parse_raises_only_query_syntax_error(text: str) -> None:
    try:
        parse(text)
    except QuerySyntaxError as err:
        assert 1 <= err.column <= len(text) + 1
