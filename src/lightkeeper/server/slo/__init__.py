"""SLOs in the server: scrape the service's counters, keep only what each SLO needs, evaluate, alert.

The math lives in `lightkeeper.slo_math` (shared with the generator, so the server and
the generated Prometheus rules cannot disagree); this package only moves numbers:
`series` picks the good/total counters out of a `/metrics` page, `samples` stores them
compactly per SLO and target, `scraper` runs the loop, `evaluate` turns stored samples
into the `/sla/status` fields, `alerting` writes burn-rate state changes to the outbox.
"""
