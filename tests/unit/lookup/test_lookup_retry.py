"""A lookup whose database connection was lost answers UNAVAILABLE, and the bot's channel tries it again: after a
database restart the first query on each pooled connection fails, and a customer must not be told "unavailable"
for that."""

import asyncpg
import grpc
import pytest

from relais.common import grpcserver
from relais.common.pb import lookup_pb2 as pb, lookup_pb2_grpc as pb_grpc
from relais.lookup.service import EnterpriseLookup


class Pool:
    """Loses the connection on its first `failures` queries, then answers the opening hours."""

    def __init__(self, failures: int):
        self.failures, self.queries = failures, 0

    async def fetch(self, query, *args):
        self.queries += 1
        if self.queries <= self.failures:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        return [{"weekday": 1, "opens": "09:00", "closes": "18:00"}]


@pytest.fixture
async def serve():
    servers = []

    async def start(pool) -> str:
        server = grpc.aio.server()
        pb_grpc.add_EnterpriseLookupServicer_to_server(EnterpriseLookup(pool), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        await server.stop(None)


async def test_a_lost_database_connection_is_retried_by_the_channel(serve):
    pool = Pool(failures=2)
    async with grpcserver.channel(await serve(pool), trace=False, retry_unavailable=True) as channel:
        reply = await pb_grpc.EnterpriseLookupStub(channel).GetOpeningHours(pb.OpeningHoursRequest(), timeout=5)
    assert [(d.weekday, d.opens) for d in reply.days] == [(1, "09:00")]
    assert pool.queries == 3


async def test_without_retries_the_caller_sees_unavailable_not_unknown(serve):
    pool = Pool(failures=1)
    async with grpcserver.channel(await serve(pool), trace=False) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await pb_grpc.EnterpriseLookupStub(channel).GetOpeningHours(pb.OpeningHoursRequest(), timeout=5)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "database unavailable" in failed.value.details()
