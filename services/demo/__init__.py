"""The demo organisation: deterministic costs, budgets and inventory of a realistic AWS estate.

Public modules: ``generator``: ``load_demo``, ``is_demo_loaded``, ``generate_facts``,
``demo_anomalies``, ``DemoSummary``; ``catalogue``: the fixed tables it draws from (``ACCOUNTS``,
``ACCOUNTS_BY_NAME``, ``CATALOGUE``, ``REGION_PREFIXES``...). Private modules, used only inside
this package: ``_plan`` (the plan drawn from the seed) and ``_inventory`` (resources and their
utilisation).
"""
