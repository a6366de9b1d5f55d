"""The one error the model package raises for a missing optional install."""


class ModelUnavailable(RuntimeError):
    """A family needs something that is not installed (MiniLM weights, tokenizers, torch)."""
