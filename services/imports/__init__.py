"""Cost files in: FOCUS 1.0-1.2 and CUR 2.0 (CSV, gzip CSV, Parquet), by upload or from S3.

Public modules and what other domains call:
- ``pipeline``: ``import_file``, ``import_files``, ``detect_format``, ``stored_account_id``, ``ImportResult``.
- ``s3_exports``: ``S3Location``, ``S3Object``, ``list_export``, ``download``.
"""
