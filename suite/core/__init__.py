"""core: the plumbing every study shares; it knows no technique.

Data flow: studies/<name>.yaml -> loader (schema) -> plan -> runner (executors, fit) -> store
-> analysis -> report. Techniques (suite.techniques.*) register their pieces, settings,
metrics and report sections in `registry`; `plugins.load_plugins()` imports them. Nothing in
core imports a technique (tests/core/test_imports.py holds that).
"""
