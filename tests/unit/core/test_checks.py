"""core/checks.py: what a configuration can be seen to get wrong without any I/O."""

from __future__ import annotations

import pytest

from cokreat_jobs.core.checks import (
    Endpoint,
    Problem,
    check_allow_list,
    check_base_url,
    check_kafka,
    kafka_endpoints,
    raise_for_problems,
    url_endpoint,
)
from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.errors import ConfigError

KEY = "service.search.basePath"


@pytest.mark.parametrize(
    "url",
    [
        "http://search:9000/search",
        "https://dev.sunbirded.org/api",
        "http://11.2.6.6/content",
        "http://[::1]:80",
    ],
)
def test_well_formed_base_urls_pass(url: str) -> None:
    assert check_base_url(JobConfig({"u": url}), "u") == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("localhost:9000/search", "http://"),  # no scheme: urlsplit takes "localhost" as one
        ("search:9000", "http://"),
        ("ftp://host/x", "http://"),
        ("http:///search", "no host"),
        ("http://host:port/x", "not a URL"),
        ("", "empty"),
        (" http://host/x", "blanks"),
        (9000, "got int"),
    ],
)
def test_malformed_base_urls_are_errors(url: object, says: str) -> None:
    problems = check_base_url(JobConfig({"u": url}), "u")
    assert len(problems) == 1 and problems[0].level == "error" and problems[0].key == "u"
    assert says in problems[0].message


def test_an_absent_base_url_is_an_error_only_when_required() -> None:
    assert check_base_url(JobConfig({}), KEY)[0].message.startswith("is missing")
    assert check_base_url(JobConfig({}), KEY, required=False) == []


def test_url_endpoint_fills_the_default_port() -> None:
    assert url_endpoint("k", "https://h/x") == Endpoint("k", "h", 443)
    assert url_endpoint("k", "http://h:9000") == Endpoint("k", "h", 9000)
    assert url_endpoint("k", "ftp://h/x") is None
    assert url_endpoint("k", "nonsense") is None


@pytest.mark.parametrize("brokers", ["kafka:9092", "k1:9092, k2:9093", "PLAINTEXT://k1:9092", ["k1:9092"]])
def test_kafka_brokers_pass(brokers: object) -> None:
    assert check_kafka(JobConfig({"kafka": {"broker-servers": brokers}})) == []


@pytest.mark.parametrize(
    ("brokers", "says"), [("", "names no broker"), ("kafka", "not host:port"), ("k:x", "not host:port")]
)
def test_kafka_broker_mistakes(brokers: str, says: str) -> None:
    problems = check_kafka(JobConfig({"kafka": {"broker-servers": brokers}}))
    assert problems and says in problems[0].message and problems[0].key == "kafka.broker-servers"


def test_kafka_brokers_missing_and_their_endpoints() -> None:
    assert check_kafka(JobConfig({}))[0].message.startswith("is missing")
    assert kafka_endpoints(JobConfig({"kafka": {"broker-servers": "a:1,b:2,bad"}})) == [
        Endpoint("kafka.broker-servers", "a", 1),
        Endpoint("kafka.broker-servers", "b", 2),
    ]


ALLOW = "content_auto_creator.artifact_upload_allowed_source"


@pytest.mark.parametrize(
    "entry",
    [
        "drive.google.com",
        "https://drive.google.com/file",
        "example.org/files",
        "cdn.example.co.in",
        "127.0.0.1:8765",
        "sandbox",  # a cluster-internal name
        "https://obj.dev.sunbird.org",
    ],
)
def test_allow_list_entries_that_match_something(entry: str) -> None:
    assert check_allow_list(JobConfig({"a": [entry]}), "a") == []


@pytest.mark.parametrize(
    "entry", ["/drive", "docs.google", "drive.google", "*.google.com", "ftp://files.org", "?id="]
)
def test_allow_list_entries_that_match_nothing_are_warnings(entry: str) -> None:
    problems = check_allow_list(JobConfig({"a": ["drive.google.com", entry]}), "a")
    assert len(problems) == 1, problems
    assert problems[0].level == "warning" and problems[0].key == "a" and repr(entry) in problems[0].message


def test_allow_list_as_one_comma_separated_string_and_absent() -> None:
    problems = check_allow_list(JobConfig({"a": "https://drive.google.com, /drive"}), "a")
    assert [p.message.split()[0] for p in problems] == ["'/drive'"]
    assert check_allow_list(JobConfig({}), ALLOW) == []


def test_raise_for_problems_lists_every_error_and_ignores_warnings() -> None:
    raise_for_problems("job", [Problem("a", "only a warning", "warning")])
    with pytest.raises(ConfigError) as caught:
        raise_for_problems(
            "job", [Problem("a", "first"), Problem("b", "second"), Problem("c", "w", "warning")]
        )
    text = str(caught.value)
    assert "2 problem(s)" in text and "error: a: first" in text and "error: b: second" in text
    assert "c: w" not in text
