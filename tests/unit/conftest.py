"""Fixtures shared by the unit tests of several folders."""

import pytest

from infra.certs.make_certs import make_certs


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A private CA with a server and a client certificate (infra/certs/make_certs.py), made once; read, never changed."""
    return make_certs(tmp_path_factory.mktemp("certs"))
