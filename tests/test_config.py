"""Settings from flags and the environment: observability options."""

from __future__ import annotations

import pytest

from wisp.config import load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert (settings.log_format, settings.tracing, settings.otlp_endpoint) == ("text", "on", "")


def test_environment_and_flags() -> None:
    env = {"WISP_LOG_FORMAT": "json", "WISP_TRACING": "off", "WISP_OTLP_ENDPOINT": "http://c:4318"}
    settings = load_settings(env)
    assert (settings.log_format, settings.tracing) == ("json", "off")
    assert settings.otlp_endpoint == "http://c:4318"
    assert load_settings(env, log_format="text").log_format == "text"  # flags win


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
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "otel:4318"}, "must be an http:// or https:// URL"),
    ],
)
def test_bad_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        load_settings(env)
    assert message in str(caught.value)
