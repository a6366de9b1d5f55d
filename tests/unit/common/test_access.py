"""Access settings: Kafka security from the environment, the service-token check, TLS settings, the stack's token."""

import ssl

import pytest

from relais.common import bus
from relais.common.config import ConfigError, kafka_security, service_token
from relais.common.grpcserver import AccessError, TokenInterceptor, channel_credentials, server_credentials


def test_plaintext_kafka_by_default():
    assert kafka_security({}) == {}
    assert kafka_security({"KAFKA_SECURITY_PROTOCOL": "plaintext"}) == {}


def test_sasl_plaintext_maps_to_aiokafka_arguments():
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_USERNAME": "relais",
        "KAFKA_SASL_PASSWORD": "s3cret",
    }
    assert kafka_security(env) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "relais",
        "sasl_plain_password": "s3cret",
    }
    assert kafka_security(env | {"KAFKA_SASL_MECHANISM": "scram-sha-512"})["sasl_mechanism"] == "SCRAM-SHA-512"


def test_ssl_and_sasl_ssl_build_an_ssl_context_from_the_ca(certs):
    options = kafka_security({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(certs["ca.pem"])})
    assert options["security_protocol"] == "SSL" and isinstance(options["ssl_context"], ssl.SSLContext)
    options = kafka_security(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
            "KAFKA_SASL_USERNAME": "u",
            "KAFKA_SASL_PASSWORD": "p",
            "KAFKA_SSL_CAFILE": str(certs["ca.pem"]),
            "KAFKA_SSL_CERTFILE": str(certs["client.pem"]),
            "KAFKA_SSL_KEYFILE": str(certs["client.key"]),
        }
    )
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-256")
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    "env, message",
    [
        ({"KAFKA_SECURITY_PROTOCOL": "KERBEROS"}, "KAFKA_SECURITY_PROTOCOL=KERBEROS"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_PASSWORD"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "GSSAPI",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "p",
            },
            "KAFKA_SASL_MECHANISM=GSSAPI",
        ),
    ],
)
def test_bad_kafka_security_settings_are_named(env, message):
    with pytest.raises(ConfigError, match=message):
        kafka_security(env)


async def test_producers_and_consumers_take_the_security_settings(monkeypatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "relais")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pw")
    for client in (bus.make_producer("127.0.0.1:1").client, bus.make_consumer("127.0.0.1:1", "g", "t")._client):
        assert (client._security_protocol, client._sasl_mechanism, client._sasl_plain_username) == (
            "SASL_PLAINTEXT",
            "SCRAM-SHA-256",
            "relais",
        )


def test_service_token_check_refuses_missing_malformed_and_wrong_tokens():
    check = TokenInterceptor({"relais.v1.Analytics"}, "the-token").check
    assert check("relais.v1.Analytics", [("authorization", "Bearer the-token")]) is None
    assert check("relais.v1.Analytics", [("authorization", "bearer  the-token ")]) is None
    assert "needs a service token" in (check("relais.v1.Analytics", []) or "")
    assert "must be 'Bearer" in (check("relais.v1.Analytics", [("authorization", "Basic dXNlcg==")]) or "")
    assert (check("relais.v1.Analytics", [("authorization", "Bearer nope")]) or "").endswith("invalid service token")
    unset = TokenInterceptor({"relais.v1.Analytics"}, None).check
    assert "RELAIS_SERVICE_TOKEN is not set on the server" in (
        unset("relais.v1.Analytics", [("authorization", "Bearer x")]) or ""
    )
    assert service_token({"RELAIS_SERVICE_TOKEN": "  "}) is None


def test_tls_settings_need_both_halves(certs):
    assert server_credentials({}) is None and channel_credentials({}) is None
    with pytest.raises(AccessError, match="both RELAIS_TLS_CERT and RELAIS_TLS_KEY"):
        server_credentials({"RELAIS_TLS_CERT": str(certs["server.pem"])})
    with pytest.raises(AccessError, match="RELAIS_TLS_CLIENT_CA is set without"):
        server_credentials({"RELAIS_TLS_CLIENT_CA": str(certs["ca.pem"])})
    with pytest.raises(AccessError, match="RELAIS_TLS_KEY=/nope: cannot read"):
        server_credentials({"RELAIS_TLS_CERT": str(certs["server.pem"]), "RELAIS_TLS_KEY": "/nope"})
    assert (
        server_credentials(
            {
                "RELAIS_TLS_CERT": str(certs["server.pem"]),
                "RELAIS_TLS_KEY": str(certs["server.key"]),
                "RELAIS_TLS_CLIENT_CA": str(certs["ca.pem"]),
            }
        )
        is not None
    )
    assert channel_credentials({"RELAIS_TLS_CA": str(certs["ca.pem"])}) is not None


def test_the_stack_generates_keeps_and_writes_the_service_token(tmp_path, monkeypatch):
    from infra.stack import Stack
    from relais.cli import endpoints

    monkeypatch.delenv("RELAIS_SERVICE_TOKEN", raising=False)
    stack = Stack(tmp_path)
    assert len(stack.service_token) >= 40
    path = stack.write_endpoints()
    assert path.stat().st_mode & 0o077 == 0  # readable by the owner only
    assert endpoints(str(path))["RELAIS_SERVICE_TOKEN"] == stack.service_token
    assert Stack(tmp_path).service_token == stack.service_token  # kept across `make up`s
    assert Stack(tmp_path, extra_env={"RELAIS_SERVICE_TOKEN": "given"}).endpoints()["RELAIS_SERVICE_TOKEN"] == "given"
