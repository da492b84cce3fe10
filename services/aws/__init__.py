"""AWS: profiles and their encrypted credentials, and the collectors that read AWS through boto3.

Public modules and what other domains call:
- ``profiles``: ``list_profiles``, ``get_profile``, ``create_profile``, ``update_profile``,
  ``delete_profile``, ``get_credentials``, ``boto_session``, ``test_connection``, ``explain``,
  ``rotate_keys``, ``configure``, ``endpoint_url``; ``ProfileCreate``, ``ProfileUpdate``,
  ``ProfileRead``.
- ``credentials``: ``ProfileCredentials``, the decrypted credentials of one use (standard library
  only: the CLI runner takes them too).
- ``regions``: ``AWS_REGIONS``, the one list of region codes a user may pick.
- ``collectors``: ``collect_profile`` (the entry point of a collection, every kind),
  ``CollectionSummary``, ``RequestMeter``, ``CLIENT_CONFIG``, ``KINDS``, ``DEFAULT_TAG_KEYS``,
  ``MAX_HISTORY_MONTHS``, ``CE_REQUEST_PRICE``.
- ``cost_explorer``: ``plan_cost_periods``, ``cost_groupings``, ``collect_forecast``,
  ``collect_anomalies``, ``COST_METRICS``.
- ``commitments``: ``collect_commitments``, ``collect_rightsizing``.
- ``budgets``: ``collect_budgets``.
- ``inventory``: resources per region and their CloudWatch CPU utilisation (``collect_profile``
  runs them).
- ``organizations``: ``collect_accounts``.

Private: ``_plumbing`` (calls and pages with throttling back-off, figures parsed from AWS's text).
"""
