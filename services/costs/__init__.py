"""Cost data: landing facts, rollups, the queries that read them, and the query cache.

Public modules and what other domains call:
- ``queries``: ``parse_filter``, ``get_overview``, ``list_accounts``, ``parse_query``, ``query_costs``,
  ``top_n``, ``compute_kpis``; ``CostFilter``, ``CostQuery``, ``Overview``, ``Kpis``, ``CostResult``.
- ``ingest`` (the only writer of cost facts): ``FactRow``, ``ArrowFacts``, ``replace_period``,
  ``billing_period_of``, ``allocation_keys``, ``key_id``, ``bump_data_version``, ``get_data_version``.
- ``rollups``: ``rebuild_period``, ``rebuild_all``, ``list_billing_periods``, ``counted_sources``,
  ``held_sources``, ``record_sources``.
- ``sources``: ``list_account_sources`` (which source each account-month counts from), ``AccountSource``.
- ``tag_aliases``: ``get_tag_aliases``, ``update_tag_aliases``, ``parse_tag_aliases``, ``reapply``;
  ``TagAliases``, ``DEFAULTS``.
- ``bulk``: ``write_table``, ``insert_rows``, ``copy_table``, ``arrow_schema``, ``Prefetched``.
- ``cache``: ``configure``, ``get_or_compute``, ``key_for``.
"""
