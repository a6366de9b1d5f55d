"""Generated from proto/relais/v1 by `make proto`; do not edit."""
