"""Cost files in: FOCUS 1.0-1.2 and CUR 2.0 (CSV, gzip CSV, Parquet), by upload or from S3.

Public modules and what other domains call:
- ``pipeline``: ``import_file``, ``import_files``, ``ImportResult``, ``MAX_ERRORS``.
- ``formats``: ``detect_format``, ``stored_account_id``, ``Format``.
- ``s3_exports``: ``S3Location``, ``S3Object``, ``list_export``, ``download``.

Private modules, used only inside this package: ``_reading`` (files read row by row or through
Arrow), ``_cells`` (parsing values), ``_focus`` and ``_cur`` (each format's rows to facts).
"""
