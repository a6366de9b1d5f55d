"""Measurements, not the product: figures printed, nothing asserted; run from a source checkout (bench/README.md).

`relais bench pipeline` (bench.pipeline) and `relais bench routing` (bench.routing) run on private stacks started
by infra.stack; the scripts beside them measure one service's pieces. Not in the relais wheel or image.
"""
