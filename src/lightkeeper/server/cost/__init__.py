"""LLM cost analytics: ingest of the SDK's cost events, roll-ups, summary, forecast,
anomalies, recommendations and budget alerts. `README.md` holds the JSON contract."""
