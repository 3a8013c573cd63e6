"""Auto-tuning of the schedules' knobs, per workload and device, into a reusable log.

``space`` (genes over a rule's knobs, validity), ``strategy`` / ``ga`` / ``random_search``
(ask/tell searches), ``workers`` (crash- and hang-proof process pool), ``measure`` (parallel
builds, local or RPC-tracker runners), ``log`` (the append-only JSONL tuning log), ``tasks``
(a model's distinct workloads) and ``session`` (budget allocation, resume, the search loop).
"""
