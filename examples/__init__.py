"""Example applications instrumented with Lightkeeper (used by `lightkeeper demo` and end-to-end tests)."""
