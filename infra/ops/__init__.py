"""Operating the processes: health and readiness endpoints, Prometheus metrics, log lines and
retries of transient faults. Each long-running process (relay, projection worker, command
intake, HTTP server, scheduler) uses the same few modules here, so what an operator scrapes,
reads and alerts on is the same everywhere (README, "Operating it")."""
