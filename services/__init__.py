"""relais: a self-hosted contact-center backend. Each sub-package is one service; `common` is shared."""
