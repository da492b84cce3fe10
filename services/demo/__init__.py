"""The demo organisation: deterministic costs, budgets and inventory of a realistic AWS estate.

Public module: ``generator``: ``load_demo``, ``is_demo_loaded``, ``generate_facts``,
``demo_anomalies``, ``DemoSummary``.
"""
