"""regression: the diabetes dataset, the regression and logistic procedure (D5) and its report sections."""

from suite.techniques.regression import regression  # noqa: F401 (register)
