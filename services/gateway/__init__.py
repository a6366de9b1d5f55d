"""gateway: the HTTP edge. Every relais gRPC API in the Connect protocol (JSON over HTTP, for browsers and any
language), an HTTP intake of CloudEvents (`POST /events`), the web desk and wallboard pages (docs/contract.md,
"JSON over HTTP")."""
