"""Settings from flags and the environment: observability options."""

from __future__ import annotations

import pytest

from wisp.config import load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert (settings.log_format, settings.tracing, settings.otlp_endpoint) == ("text", "on", "")
    assert settings.access_log == "on"


def test_environment_and_flags() -> None:
    env = {"WISP_LOG_FORMAT": "json", "WISP_TRACING": "off", "WISP_OTLP_ENDPOINT": "http://c:4318"}
    settings = load_settings(env)
    assert (settings.log_format, settings.tracing) == ("json", "off")
    assert settings.otlp_endpoint == "http://c:4318"
    assert load_settings(env, log_format="text").log_format == "text"  # flags win
    assert load_settings({"WISP_ACCESS_LOG": "off"}).access_log == "off"
    assert load_settings({"WISP_ACCESS_LOG": "off"}, access_log="on").access_log == "on"


def test_standard_otel_endpoint_is_the_fallback() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"}
    assert load_settings(env).otlp_endpoint == "http://otel:4318"
    env["WISP_OTLP_ENDPOINT"] = "https://mine:4318"
    assert load_settings(env).otlp_endpoint == "https://mine:4318"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WISP_LOG_FORMAT": "xml"}, "WISP_LOG_FORMAT='xml': must be one of text, json"),
        ({"WISP_TRACING": "yes"}, "WISP_TRACING='yes': must be one of on, off"),
        ({"WISP_ACCESS_LOG": "true"}, "WISP_ACCESS_LOG='true': must be one of on, off"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "otel:4318"}, "must be an http:// or https:// URL"),
        ({"WISP_INSTANCE_CPUS": "-1"}, "WISP_INSTANCE_CPUS: must be a number of CPUs from 0"),
        ({"WISP_INSTANCE_CPUS": "two"}, "WISP_INSTANCE_CPUS='two' is not a valid float"),
        ({"WISP_BUILD_CPUS": "-0.5"}, "WISP_BUILD_CPUS: must be a number of CPUs from 0"),
        ({"WISP_BUILD_MEMORY_MB": "16"}, "WISP_BUILD_MEMORY_MB: must be at least 64"),
        ({"WISP_BUILD_DISK_MB": "0"}, "WISP_BUILD_DISK_MB: must be at least 1"),
        ({"WISP_BUILD_CONCURRENCY": "0"}, "WISP_BUILD_CONCURRENCY: must be at least 1"),
    ],
)
def test_bad_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        load_settings(env)
    assert message in str(caught.value)


def test_build_settings() -> None:
    assert load_settings({}).build_registries.split(",") == [
        "pypi.org",
        "files.pythonhosted.org",
        "registry.npmjs.org",
    ]
    env = {
        "WISP_BUILD_REGISTRIES": "pypi.mirror.example,*.npm.example",
        "WISP_BUILD_MEMORY_MB": "4096",
        "WISP_BUILD_CPUS": "2",
        "WISP_BUILD_CONCURRENCY": "3",
    }
    settings = load_settings(env)
    assert settings.build_registries == "pypi.mirror.example,*.npm.example"
    assert (settings.build_memory_mb, settings.build_cpus) == (4096, 2.0)
    assert settings.build_concurrency == 3


def test_payload_and_result_limits_from_the_environment() -> None:
    settings = load_settings({"WISP_PAYLOAD_MAX": "8388608", "WISP_RESULT_MAX": "16777216"})
    assert (settings.limits.payload_max, settings.limits.result_max) == (8388608, 16777216)
    assert settings.limits.code_max == load_settings({}).limits.code_max  # the rest unchanged
    for bad in ("0", "-5", "1MB"):
        with pytest.raises(ValueError) as caught:
            load_settings({"WISP_PAYLOAD_MAX": bad})
        assert f"WISP_PAYLOAD_MAX={bad!r}: must be a positive number of bytes" in str(caught.value)


def test_egress_subnet_and_nameservers() -> None:
    settings = load_settings(
        {"WISP_EGRESS_SUBNET": "10.77.0.0/20", "WISP_EGRESS_NAMESERVERS": "10.0.0.2, 1.1.1.1"}
    )
    assert settings.egress_subnet == "10.77.0.0/20"
    assert settings.egress_nameservers == "10.0.0.2, 1.1.1.1"
    assert load_settings({}).egress_subnet == "10.203.0.0/16"
    assert load_settings({}).egress_flows == 2048
    assert load_settings({"WISP_EGRESS_FLOWS": "64"}).egress_flows == 64


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WISP_EGRESS_SUBNET": "10.77.0.1/20"}, "WISP_EGRESS_SUBNET='10.77.0.1/20': not an IPv4"),
        ({"WISP_EGRESS_SUBNET": "fd00::/64"}, "WISP_EGRESS_SUBNET='fd00::/64': not an IPv4"),
        ({"WISP_EGRESS_SUBNET": "10.77.0.0/31"}, "must be a /30 or larger"),
        ({"WISP_EGRESS_NAMESERVERS": "1.1.1.1,dns"}, "'dns' is not an IPv4 address"),
        ({"WISP_EGRESS_FLOWS": "0"}, "WISP_EGRESS_FLOWS: must be at least 1"),
    ],
)
def test_bad_egress_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        load_settings(env)


def test_writer_backlog_and_stop_timeout() -> None:
    assert load_settings({}).writer_backlog == 50_000
    assert load_settings({}).writer_stop_timeout == 10.0
    settings = load_settings({"WISP_WRITER_BACKLOG": "100", "WISP_WRITER_STOP_TIMEOUT": "2.5"})
    assert (settings.writer_backlog, settings.writer_stop_timeout) == (100, 2.5)
    with pytest.raises(ValueError, match="WISP_WRITER_BACKLOG: must be at least 1"):
        load_settings({"WISP_WRITER_BACKLOG": "0"})
    with pytest.raises(ValueError, match="WISP_WRITER_STOP_TIMEOUT: must be 0 or more"):
        load_settings({"WISP_WRITER_STOP_TIMEOUT": "-1"})


def test_drain_seconds() -> None:
    assert load_settings({}).drain_seconds == 30.0
    assert load_settings({"WISP_DRAIN_SECONDS": "2.5"}).drain_seconds == 2.5
    with pytest.raises(ValueError, match="WISP_DRAIN_SECONDS: must be 0 or more"):
        load_settings({"WISP_DRAIN_SECONDS": "-1"})
