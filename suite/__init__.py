"""suite: a benchmark of deep-learning training techniques, judged claim by claim.

Layout: `suite.core` is the plumbing every study shares (study loader, plan, runner, store,
analysis, report); `suite.techniques.<area>` holds one technique area each (its registered
pieces, settings, metrics and report sections); `suite.cli` is the command line.
"""

__version__ = "0.1.0"

