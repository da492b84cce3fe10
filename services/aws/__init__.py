"""AWS: profiles and their encrypted credentials, and the collectors that read AWS through boto3.

Public modules and what other domains call:
- ``profiles``: ``list_profiles``, ``get_profile``, ``create_profile``, ``update_profile``,
  ``delete_profile``, ``get_credentials``, ``boto_session``, ``test_connection``, ``explain``,
  ``rotate_keys``; ``ProfileCreate``, ``ProfileUpdate``, ``ProfileRead``.
- ``credentials``: ``ProfileCredentials``, the decrypted credentials of one use (standard library
  only: the CLI runner takes them too).
- ``regions``: ``AWS_REGIONS``, the one list of region codes a user may pick.
- ``collectors``: ``collect_profile``, ``plan_cost_periods``, ``cost_groupings``, ``RequestMeter``,
  ``CollectionSummary``.
"""
