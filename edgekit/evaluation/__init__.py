"""Evaluation: score labelled data with every variant (``evaluate``), keep the scores and
their metadata (``results``), compute metrics (``metrics``), explain (``heatmaps``) and
render the compression report (``report``).
"""
