"""A trial, not a product path: decoding xAPI statements into a msgspec Struct schema.

    .venv/bin/python bench/trial_xapi_structs.py

Would typed decoding (types, required fields, IRI and UUID patterns checked in C,
no dicts allocated) make the push endpoint's checks cheaper? Decodes the same
20,000 statements as bench_push.py to plain dicts and to the schema below, with
the collector tuned as jacmon serve tunes it; microseconds per statement.
docs/benchmarks.md ("Platforms push") reports the result.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import msgspec
from bench_push import make_statements
from msgspec import Meta, Struct

IRI = Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")]
UUID = Annotated[
    str,
    Meta(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
]


class Account(Struct, forbid_unknown_fields=True):
    homePage: IRI
    name: str


class Agent(Struct, forbid_unknown_fields=True):
    objectType: str = "Agent"
    name: str | None = None
    mbox: Annotated[str, Meta(pattern=r"^mailto:")] | None = None
    mbox_sha1sum: str | None = None
    openid: IRI | None = None
    account: Account | None = None


class Verb(Struct, forbid_unknown_fields=True):
    id: IRI
    display: dict[str, str] | None = None


class Definition(Struct):
    type: IRI | None = None
    name: dict[str, str] | None = None
    extensions: dict[str, Any] | None = None


class Activity(Struct, forbid_unknown_fields=True):
    id: IRI
    objectType: str = "Activity"
    definition: Definition | None = None


class CA(Struct, forbid_unknown_fields=True):
    parent: list[Activity] | None = None
    grouping: list[Activity] | None = None
    category: list[Activity] | None = None
    other: list[Activity] | None = None


class Context(Struct, forbid_unknown_fields=True):
    registration: UUID | None = None
    contextActivities: CA | None = None
    extensions: dict[str, Any] | None = None


class Score(Struct, forbid_unknown_fields=True):
    scaled: Annotated[float, Meta(ge=-1, le=1)] | None = None
    raw: float | None = None
    min: float | None = None
    max: float | None = None


class Result(Struct, forbid_unknown_fields=True):
    score: Score | None = None
    success: bool | None = None
    completion: bool | None = None
    duration: str | None = None
    extensions: dict[str, Any] | None = None


class Statement(Struct, forbid_unknown_fields=True):
    actor: Agent
    verb: Verb
    object: Activity
    id: UUID | None = None
    result: Result | None = None
    context: Context | None = None
    timestamp: str | None = None


def main() -> None:
    from jacmon.server.gc_tuning import tune_for_serving

    count = 20_000
    body = json.dumps(make_statements(count)).encode()
    tune_for_serving()
    typed = msgspec.json.Decoder(list[Statement])
    plain = msgspec.json.Decoder()
    for _ in range(3):
        started = time.perf_counter()
        dicts = plain.decode(body)
        to_dicts = time.perf_counter() - started
        del dicts
        started = time.perf_counter()
        structs = typed.decode(body)
        to_structs = time.perf_counter() - started
        del structs
        print(
            f"dicts {1e6 * to_dicts / count:.1f} us, "
            f"typed Structs {1e6 * to_structs / count:.1f} us per statement"
        )


if __name__ == "__main__":
    main()
