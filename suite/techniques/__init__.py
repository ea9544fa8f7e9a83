"""techniques: one package per technique area, each a plugin (suite.core.plugins).

A package owns its registered pieces (models, activations, procedures, ...), the study settings
it reads with their types, the metrics its trials record and its report sections. Packages may
import each other (architectures builds on activations and initializers); core never imports them.
"""
