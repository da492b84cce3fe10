"""Business logic: the only layer that talks to the database, AWS, subprocesses and mail."""
