"""routing: turns each hand-off into a task (language, skills with levels, priority — rules.py and
routing_rules.yaml), offers it to the best eligible agent as a timed reservation over the AgentDesk gRPC
API, and follows it to the end: accept or reject, re-offer after a timeout, overflow, transfer, close.
Waiting customers get their position and expected wait; they can leave or ask for a callback.

Every change is one PostgreSQL transaction (tasks, agents, task_events) whose outgoing records go through the
outbox (relais.common.unit_of_work, every service's), so a restart — even SIGKILL — loses no task and no
reservation: the state is the database, and a ticker expires offers, ends wrap-ups, applies overflow and
re-dispatches. One active routing process at a time, holding the lease (relais.common.lease) on the connection its
decisions are made on; a standby takes over when it dies. The active's lock serialises decisions and it holds the
agents' live streams.

Where things are: the use cases in app.py, over the unit of work (unit.py) and the handlers (handlers.py); the
decisions, pure, in rules.py and places.py; every SQL statement in store.py; every text in texts.py; what routing
keeps in memory in memory.py; what agents are shown in desk_view.py; the AgentDesk gRPC edge in desk_api.py. This
file wires them.
"""

import asyncio
import gc
import logging
import os
import sys

from relais.classifier.catalogue import load_catalogue
from relais.common import metrics, topics, worker
from relais.common.lease import Lease
from relais.common.pb import agent_desk_pb2 as desk, agent_desk_pb2_grpc as desk_grpc, live_pb2, live_pb2_grpc
from relais.common.runtime import serve
from relais.routing import rules, store
from relais.routing.app import Routing
from relais.routing.desk_api import AgentDesk
from relais.routing.live_api import LiveFeed, LiveView

log = logging.getLogger(__name__)


def _assistant():
    """The agent assistant (relais.routing.assist), or None when it cannot be built: routing runs without it."""
    try:
        from relais.routing.assist import Assistant

        return Assistant.from_env()
    except Exception:
        log.exception("agent assist unavailable; offers go out without summary and suggestions")
        return None


async def build(w: worker.Worker) -> worker.Service:
    # Assist drafts in a thread (after its offer is pushed) while the next decisions may be in flight; when a commit
    # answers, the event loop must get the GIL back within half a millisecond, not after the default 5 ms switch interval.
    sys.setswitchinterval(0.0005)
    catalogue = load_catalogue()
    routing_rules = rules.load_rules(known_intents=catalogue.intents)
    # One active routing process, any number of standbys: the lease (docs/operations.md, "Routing: active and standby").
    lease = Lease(w.pool, "routing", os.environ.get("RELAIS_ADVERTISED_ADDR", "").strip() or w.settings.grpc_addr)
    routing = Routing(
        w.pool,
        w.producer,
        routing_rules,
        {i.id: i.skill for i in catalogue.intents.values()},
        _assistant(),
        float(os.environ.get("RELAIS_ROUTING_TICK_SECONDS") or 1.0),
        lease,
    )
    # What was loaded to start (libraries, the catalogue, the assistant's knowledge base: ~120,000 objects) lives as long
    # as the process: kept out of the collector's full passes, each of which stalled every decision for 70-100 ms.
    gc.collect()
    gc.freeze()
    snapshots = (lambda: metrics_snapshots(w.pool, routing_rules),) if metrics.enabled() else ()
    return worker.Service(
        decode=routing.decode,
        handle_batch=routing.handle_batch,
        own_transaction=True,
        topics=(topics.HANDOFFS,),
        grpc_services=(
            desk.DESCRIPTOR.services_by_name["AgentDesk"].full_name,
            live_pb2.DESCRIPTOR.services_by_name["LiveView"].full_name,
        ),
        register=lambda server: (
            desk_grpc.add_AgentDeskServicer_to_server(AgentDesk(routing), server),
            live_pb2_grpc.add_LiveViewServicer_to_server(LiveView(LiveFeed(w.pool, routing_rules)), server),
        ),
        background=(routing.run_ticker, *snapshots),
        close=routing.close,
        lease=lease,
        on_active=routing.take_over,
    )


def queues_now(rows, routing_rules: rules.RoutingRules) -> list[metrics.QueueNow]:
    """store.METRICS_QUEUES' rows (per language and overflow stage) per queue: the language's own ("") until a step
    names a skill queue (or any)."""
    queues: dict[tuple[str, str], tuple[int, float]] = {}  # (language, queue) -> waiting, oldest
    for row in rows:
        key = (row["language"], rules.needs_at_stage({}, row["stage"], routing_rules)[1])
        waiting, oldest = queues.get(key, (0, 0.0))
        queues[key] = (waiting + row["waiting"], max(oldest, float(row["oldest"] or 0.0)))
    return [metrics.QueueNow(language, queue, n, oldest) for (language, queue), (n, oldest) in sorted(queues.items())]


async def metrics_snapshots(pool, routing_rules: rules.RoutingRules, seconds: float = 1.0) -> None:
    """relais_queue_* and relais_agents, read by the active process once a second (the scrape reads what it kept)."""
    while True:
        await asyncio.sleep(seconds)
        try:
            async with pool.acquire() as conn:
                rows, agents = await store.metrics_snapshot(conn)
        except Exception as error:  # the database is away: the watchdog says so; the snapshot goes stale, then unshown
            log.debug("metrics snapshot not read: %r", error)
            continue
        metrics.routing_snapshot(queues_now(rows, routing_rules), agents)


def main() -> None:
    serve("routing", lambda settings, stop: worker.run(settings, stop, build))


if __name__ == "__main__":
    main()
