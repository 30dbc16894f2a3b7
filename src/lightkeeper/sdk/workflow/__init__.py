"""Workflow health gauges sampled from the database, never per request.

`declarations` holds what a service declares (free to import), `query` the one grouped
query per entity and the folding of its rows into bounded label values, `sampler` the
background thread with its own engine, statement timeout and staleness gauge.
"""
