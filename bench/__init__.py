"""Benchmarks that exercise several services at once (`relais bench pipeline`)."""
