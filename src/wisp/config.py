"""One Settings object, read once from flags and the environment, then passed down."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3233
DEFAULT_DATA_DIR = ".wisp"
KB = 1024
MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Operator-configurable defaults and ranges for per-function limits."""

    memory_min: int = 128  # MB
    memory_max: int = 1024
    memory_default: int = 256
    timeout_min: int = 100  # ms
    timeout_max: int = 15 * 60 * 1000
    timeout_default: int = 3000
    logs_min: int = 0  # KB of log output per activation
    logs_max: int = 10 * 1024
    logs_default: int = 1024
    payload_max: int = 1 * MB  # invoke parameters, bytes
    result_max: int = 1 * MB  # function result, bytes
    code_max: int = 48 * MB  # action code, bytes (decoded)


@dataclass(frozen=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    database_url: str = ""  # empty: sqlite in data_dir
    api_host: str = ""  # URL functions see as __OW_API_HOST; empty: derived from host/port
    sync_limit: float = 30.0  # seconds a blocking invoke waits before answering 202
    drain_seconds: float = 30.0  # at a stop, how long running activations get to finish
    retention_hours: float = 72.0
    limits: Limits = field(default_factory=Limits)
    pool_memory_mb: int = 8192  # sum of limits.memory of live instances
    keepalive: float = 600.0  # seconds an idle instance is kept warm
    stem_cells: int = 2  # pre-forked, confined, code-less instances per runtime
    build_timeout: float = 300.0  # seconds a deploy's server-side build may take
    # Hosts builds may reach (HTTPS through the build proxy); "*.suffix" allows subdomains.
    build_registries: str = "pypi.org,files.pythonhosted.org,registry.npmjs.org"
    build_memory_mb: int = 2048  # memory (cgroup) of one build command
    build_cpus: float = 1.0  # CPU time per wall second of one build command; 0: no quota
    build_disk_mb: int = 2048  # what one build command may write to its folders on disk
    build_concurrency: int = 2  # builds at once; further deploys that need one wait
    runtimes_file: str = ""  # JSON list of operator-defined runtime kinds
    uid_base: int = 200_000  # unprivileged uids for instances when running as root
    uid_count: int = 4096
    cgroups: str = "auto"  # auto | off
    # The least the sandbox must achieve: minimal|userns|standard|strict. Empty: userns,
    # so that a host reaching only minimal (single-tenant) refuses unless asked for it.
    isolation: str = ""
    # Functions' network unless annotated: egress | none | egress-unfiltered (egress, but
    # sharing the host's network where no filter can be installed, instead of none).
    network: str = "egress"
    instance_cpus: float = 1.0  # CPU time per wall second one instance may use; 0: no quota
    egress_subnet: str = "10.203.0.0/16"  # egress instances' addresses, a /30 each (root)
    egress_nameservers: str = ""  # IPv4 DNS servers instances may reach; empty: resolv.conf's
    egress_flows: int = 2048  # conntrack entries (flows) one egress instance may hold at once
    sandbox_paths: tuple[str, ...] = ()  # more host paths visible (read-only) in sandboxes
    namespace_concurrent: int = 120  # invocations in flight per namespace (DigitalOcean's)
    namespace_per_minute: int = 600  # invocations started per namespace per minute
    writer_batch: int = 512  # activation records per group commit
    writer_interval: float = 0.02  # seconds a group commit waits for more records
    writer_backlog: int = 50_000  # unwritten activation records before invokes get 503
    writer_stop_timeout: float = 10.0  # seconds a stop waits for the store; the rest stays on disk
    trusted_proxies: str = ""  # CIDRs whose X-Forwarded-For the gateway believes, comma-separated
    jwks_allow_http_loopback: str = "off"  # on: route JWKS over http:// (and https) to loopback
    jwks_allow_networks: str = ""  # CIDRs route JWKS URLs may reach although not public
    jwks_ca_file: str = ""  # PEM CAs trusted for route JWKS besides the system's
    master_key_file: str = ""  # wraps the namespaces' secret data keys; empty: data dir's
    master_key: str = ""  # the master key itself (base64 of 32 bytes); wins over the file
    console_secret: str = ""  # signs console sessions; empty: kept in the data dir
    trigger_fires_per_minute: int = 60  # API fires of triggers per namespace (OpenWhisk's)
    scheduler_interval: float = 1.0  # seconds between polls for due schedule ticks
    log_format: str = "text"  # platform logs on stderr: text | json (one object per line)
    access_log: str = "on"  # a line per HTTP request among the platform logs: on | off
    tracing: str = "on"  # on: an invocation without a traceparent starts a trace; off: none
    otlp_endpoint: str = ""  # OTLP/HTTP base URL spans are exported to (/v1/traces); empty: none

    @property
    def sqlite_url(self) -> str:
        return f"sqlite:///{(self.data_dir / 'wisp.db').resolve()}"

    @property
    def store_url(self) -> str:
        return self.database_url or self.sqlite_url

    @property
    def public_api_host(self) -> str:
        return self.api_host or f"http://{self.host}:{self.port}"

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


_ENV: dict[str, str] = {
    "database_url": "WISP_DATABASE_URL",
    "api_host": "WISP_API_HOST",
    "sync_limit": "WISP_SYNC_LIMIT",
    "drain_seconds": "WISP_DRAIN_SECONDS",
    "retention_hours": "WISP_RETENTION_HOURS",
    "pool_memory_mb": "WISP_POOL_MEMORY_MB",
    "keepalive": "WISP_KEEPALIVE",
    "stem_cells": "WISP_STEM_CELLS",
    "build_timeout": "WISP_BUILD_TIMEOUT",
    "build_registries": "WISP_BUILD_REGISTRIES",
    "build_memory_mb": "WISP_BUILD_MEMORY_MB",
    "build_cpus": "WISP_BUILD_CPUS",
    "build_disk_mb": "WISP_BUILD_DISK_MB",
    "build_concurrency": "WISP_BUILD_CONCURRENCY",
    "runtimes_file": "WISP_RUNTIMES_FILE",
    "cgroups": "WISP_CGROUPS",
    "master_key_file": "WISP_MASTER_KEY_FILE",
    "master_key": "WISP_MASTER_KEY",
    "console_secret": "WISP_CONSOLE_SECRET",
    "isolation": "WISP_ISOLATION",
    "network": "WISP_NETWORK",
    "instance_cpus": "WISP_INSTANCE_CPUS",
    "egress_subnet": "WISP_EGRESS_SUBNET",
    "egress_nameservers": "WISP_EGRESS_NAMESERVERS",
    "egress_flows": "WISP_EGRESS_FLOWS",
    "namespace_concurrent": "WISP_NAMESPACE_CONCURRENT",
    "namespace_per_minute": "WISP_NAMESPACE_PER_MINUTE",
    "writer_backlog": "WISP_WRITER_BACKLOG",
    "writer_stop_timeout": "WISP_WRITER_STOP_TIMEOUT",
    "trusted_proxies": "WISP_TRUSTED_PROXIES",
    "jwks_allow_http_loopback": "WISP_JWKS_ALLOW_HTTP_LOOPBACK",
    "jwks_allow_networks": "WISP_JWKS_ALLOW_NETWORKS",
    "jwks_ca_file": "WISP_JWKS_CA_FILE",
    "trigger_fires_per_minute": "WISP_TRIGGER_FIRES_PER_MINUTE",
    "scheduler_interval": "WISP_SCHEDULER_INTERVAL",
    "log_format": "WISP_LOG_FORMAT",
    "access_log": "WISP_ACCESS_LOG",
    "tracing": "WISP_TRACING",
    "otlp_endpoint": "WISP_OTLP_ENDPOINT",
}
# Read when Wisp's own variable is unset: what every OpenTelemetry SDK reads.
_ENV_FALLBACK: dict[str, str] = {"otlp_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT"}
CHOICES: dict[str, tuple[str, ...]] = {
    "log_format": ("text", "json"),
    "access_log": ("on", "off"),
    "tracing": ("on", "off"),
    "network": ("egress", "none", "egress-unfiltered"),
    "jwks_allow_http_loopback": ("on", "off"),
}
# Limits an operator may raise or lower, in bytes (the rest are per-function ranges).
_LIMITS_ENV: dict[str, str] = {"payload_max": "WISP_PAYLOAD_MAX", "result_max": "WISP_RESULT_MAX"}


def load_settings(env: Mapping[str, str] | None = None, **flags: Any) -> Settings:
    """Flags win over the environment, which wins over the defaults."""
    env = os.environ if env is None else env
    types = {f.name: f.type for f in fields(Settings)}
    values: dict[str, Any] = {}
    for name, var in _ENV.items():
        raw = env.get(var)
        if (raw is None or raw == "") and name in _ENV_FALLBACK:
            var = _ENV_FALLBACK[name]
            raw = env.get(var)
        if raw is None or raw == "":
            continue
        if name in CHOICES and raw not in CHOICES[name]:
            raise ValueError(f"{var}={raw!r}: must be one of {', '.join(CHOICES[name])}")
        kind = types[name]
        try:
            values[name] = float(raw) if kind == "float" else int(raw) if kind == "int" else raw
        except ValueError as exc:
            raise ValueError(f"{var}={raw!r} is not a valid {kind}") from exc
    limits: dict[str, int] = {}
    for name, var in _LIMITS_ENV.items():
        raw = env.get(var)
        if raw:
            if not raw.isdigit() or int(raw) <= 0:
                raise ValueError(f"{var}={raw!r}: must be a positive number of bytes")
            limits[name] = int(raw)
    if limits:
        values["limits"] = replace(Limits(), **limits)
    values.update({k: v for k, v in flags.items() if v is not None})
    endpoint = values.get("otlp_endpoint", "")
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"OTLP endpoint {endpoint!r}: must be an http:// or https:// URL")
    if not 0 <= values.get("instance_cpus", 0) <= 1024:
        raise ValueError("WISP_INSTANCE_CPUS: must be a number of CPUs from 0 (no quota) to 1024")
    if not 0 <= values.get("build_cpus", 0) <= 1024:
        raise ValueError("WISP_BUILD_CPUS: must be a number of CPUs from 0 (no quota) to 1024")
    if values.get("build_memory_mb", 64) < 64:
        raise ValueError("WISP_BUILD_MEMORY_MB: must be at least 64 (MB)")
    if values.get("build_disk_mb", 1) < 1:
        raise ValueError("WISP_BUILD_DISK_MB: must be at least 1 (MB)")
    if values.get("build_concurrency", 1) < 1:
        raise ValueError("WISP_BUILD_CONCURRENCY: must be at least 1 (builds at once)")
    check_egress(values)
    if values.get("writer_backlog", 1) < 1:
        raise ValueError("WISP_WRITER_BACKLOG: must be at least 1 (activation records)")
    if values.get("drain_seconds", 0) < 0:
        raise ValueError("WISP_DRAIN_SECONDS: must be 0 or more seconds")
    if values.get("writer_stop_timeout", 0) < 0:
        raise ValueError("WISP_WRITER_STOP_TIMEOUT: must be 0 or more seconds")
    for item in str(values.get("jwks_allow_networks") or "").split(","):
        if item.strip():
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"WISP_JWKS_ALLOW_NETWORKS: {item.strip()!r} is not an IP network"
                ) from None
    if "data_dir" in values:
        values["data_dir"] = Path(values["data_dir"])
    return Settings(**values)


def check_egress(values: Mapping[str, Any]) -> None:
    """The egress pool must be an IPv4 network with room for at least one /30, and the
    nameservers IPv4 addresses."""
    subnet = values.get("egress_subnet")
    if subnet is not None:
        try:
            network = ipaddress.IPv4Network(subnet)
        except ValueError as exc:
            raise ValueError(
                f"WISP_EGRESS_SUBNET={subnet!r}: not an IPv4 network ({exc})"
            ) from None
        if network.prefixlen > 30:
            raise ValueError(f"WISP_EGRESS_SUBNET={subnet!r}: must be a /30 or larger")
    for item in str(values.get("egress_nameservers") or "").split(","):
        if item.strip():
            try:
                ipaddress.IPv4Address(item.strip())
            except ValueError:
                raise ValueError(
                    f"WISP_EGRESS_NAMESERVERS: {item.strip()!r} is not an IPv4 address"
                ) from None
    if values.get("egress_flows", 1) < 1:
        raise ValueError("WISP_EGRESS_FLOWS: must be at least 1 (flows one instance may hold)")
