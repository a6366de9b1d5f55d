"""gRPC health probe for the container health checks (docker-compose.yml).

    python infra/compose/healthcheck.py 50051          # 127.0.0.1:50051
    python infra/compose/healthcheck.py lookup:50056

Exits 0 when the server answers SERVING for the overall health ("" service), 1 when it is
unreachable or not serving, 2 on bad usage. A relais service starts its gRPC server only after
it has connected to PostgreSQL and Kafka, and reports NOT_SERVING once it starts to stop
(relais.common.worker, relais.common.grpcserver).
"""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not (":" in argv[0] or argv[0].isdigit()):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    target = argv[0] if ":" in argv[0] else f"127.0.0.1:{argv[0]}"
    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        except grpc.RpcError as error:
            print(f"{target}: {error.code().name}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(f"{target}: {status}")
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
