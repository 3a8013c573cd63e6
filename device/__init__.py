"""Device runner: targets, cross-compilation, local and RPC runners, latency statistics."""
