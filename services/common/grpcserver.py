"""gRPC servers and channels with standard health checking, reflection and tracing."""

from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor

Register = Callable[[grpc.aio.Server], None]


class GrpcServer:
    """A started aio server; `services` are the full names it serves (for health and reflection)."""

    def __init__(self, addr: str, services: list[str], register: Register | None = None):
        self.addr = addr
        self.services = services
        self.server = grpc.aio.server(interceptors=[aio_server_interceptor()])
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if register:
            register(self.server)
        names = [*services, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, self.server)
        self.port = self.server.add_insecure_port(addr)

    async def start(self) -> None:
        # grpc's health servicer reports the server as SERVING from the start; we say so only
        # once Kafka and the database are connected.
        await self.set_serving(False)
        await self.server.start()

    async def set_serving(self, serving: bool = True) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *self.services]:
            await self.health.set(name, status)

    async def stop(self, grace: float = 5) -> None:
        await self.set_serving(False)
        await self.server.stop(grace)


def channel(addr: str) -> grpc.aio.Channel:
    """A client channel whose calls carry the current trace context."""
    return grpc.aio.insecure_channel(addr, interceptors=aio_client_interceptors())
