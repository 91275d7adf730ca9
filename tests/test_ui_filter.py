"""The runs table's filter language, on plain rows (no server, no store)."""

from __future__ import annotations

import math

import pytest
from autologagent._ui_filter import FilterError, compile_filter

ROWS = [
    {
        "run_id": "aaa111",
        "name": "forest",
        "status": "FINISHED",
        "experiment": "Default",
        "source": "/work/seed_example.py",
        "params": {"max_depth": "10", "criterion": "gini"},
        "metrics": {"training_score": 0.95, "loss": math.nan},
        "tags": {"mlflow.source.name": "seed_example.py"},
    },
    {
        "run_id": "bbb222",
        "name": "boost",
        "status": "FAILED",
        "experiment": "tuning",
        "source": "/work/train.py",
        "params": {"max_depth": "9", "criterion": "it's"},
        "metrics": {"training_score": 0.5},
        "tags": {},
    },
]


def names(expression: str) -> list[str]:
    predicate = compile_filter(expression)
    return [row["name"] for row in ROWS if predicate(row)]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("", ["forest", "boost"]),
        ("metrics.training_score > 0.9 and params.max_depth = 10", ["forest"]),
        ("params.max_depth > 9.5", ["forest"]),  # "10" > "9" as numbers, not as text
        ("params.max_depth != 10", ["boost"]),
        ("params.criterion = gini", ["forest"]),
        ("params.criterion = 'it\\'s'", ["boost"]),
        ('param.criterion = "gini" or status = "FAILED"', ["forest", "boost"]),
        ("(status = 'FAILED' or name = 'forest') and metrics.training_score < 0.6", ["boost"]),
        ("metrics.loss < 1", []),  # NaN compares false
        ("metrics.missing > 0", []),  # absent: never matches
        ("tags.`mlflow.source.name` = 'seed_example.py'", ["forest"]),
        ("attributes.experiment ILIKE 'TUN%'", ["boost"]),
        ("name LIKE 'f_rest'", ["forest"]),
        ("name LIKE 'F%'", []),  # LIKE is case-sensitive, ILIKE is not
        ("FOREST", ["forest"]),  # plain text: a search in name, id, experiment, source
        ("train.py", ["boost"]),
        ("bbb2", ["boost"]),
    ],
)
def test_filter(expression: str, expected: list[str]) -> None:
    assert names(expression) == expected


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("metrics.x >", "it ends where a value should follow"),
        ("metrics.x = 1 and", "it ends where a comparison should follow"),
        ("weights.x = 1", "unknown column 'weights.x'"),
        ("attributes.color = 'red'", "unknown attribute 'color'"),
        ("params.lr ~ 3", "unknown operator '~'"),
        ("(status = 'FAILED'", "it ends where ')' should follow"),
        ("status = 'FAILED')", "unexpected ')'"),
        ("params.a = 'unclosed", "cannot read"),
    ],
)
def test_bad_filters_name_the_problem_and_what_is_accepted(expression: str, says: str) -> None:
    with pytest.raises(FilterError) as raised:
        compile_filter(expression)
    message = str(raised.value)
    assert says in message and "expected ENTITY.KEY OP VALUE" in message
    assert "\n" not in message
