"""The optional monitor server (probes, SLOs, status page); not built yet."""
