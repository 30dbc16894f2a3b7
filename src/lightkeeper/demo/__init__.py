"""`lightkeeper demo`: the example app under uvicorn, generated traffic, and a summary read
back from the app's own /metrics. The CLI command in `lightkeeper.cli.demo` is a thin shell
over `runner.run_demo`.
"""
