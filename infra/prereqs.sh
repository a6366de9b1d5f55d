#!/usr/bin/env bash
# Makes sure the local processes can run: Java 17+ and Maven (Kafka), PostgreSQL server binaries; openssl
# (make certs) and Chromium (the analytics report's browser test).
# Installs Debian packages when running as root with apt-get; otherwise says what to install.
set -euo pipefail
missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ -n "${PG_BIN:-}" ] || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
command -v openssl >/dev/null || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
elif docker info >/dev/null 2>&1; then
  echo "missing ${missing[*]}: docker-compose.yml can run the stack instead (docker compose up)"
else
  echo "relais needs these Debian packages (Kafka, PostgreSQL, certificates, browser test): ${missing[*]}" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
