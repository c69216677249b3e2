"""Applications built from the parts, above the composition root: the retraining cycle and its
gate, held-out evaluation, online retraining, train-tiny and the demo.

Nothing below this package imports it.
"""
