"""Business logic: the only layer that talks to the database, AWS, subprocesses and mail.

One package per domain (``costs``, ``imports``, ``aws``, ``jobs``, ``runner``, ``identity``,
``audit``, ``demo``), each naming its public surface in its ``__init__`` docstring; modules
whose names start with ``_`` are private to their package. Beside them, the shared kernel every
domain uses: ``errors`` (domain exceptions), ``validation`` (pydantic parsing), ``database``
(the one session helper), ``crypto`` (secrets at rest), ``months`` (calendar-month
arithmetic) and ``health`` (dependency checks).
"""
