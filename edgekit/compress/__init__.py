"""Compression: a model and its labelled data prepared once (``workspace``), pruning
(``prune``), per-op and per-layer sensitivity (``sensitivity``) and the budgeted search
(``optimize``).
"""
