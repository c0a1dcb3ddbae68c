"""Server features, one module each, each exposing `register(server)` (see `torchbolt_lsp.server`)."""
