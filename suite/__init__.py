"""suite: a benchmark of deep-learning training techniques, judged claim by claim.

Data flow: studies/<name>.yaml -> spec -> plan -> runner -> store -> analysis -> report.
"""

__version__ = "0.1.0"

# Bumped whenever a stored trial record changes meaning; part of every trial key,
# so records of an older layout are never silently mixed with new ones.
RECORD_SCHEMA = 1
