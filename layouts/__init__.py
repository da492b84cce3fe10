"""Pure builders from plain data to Dash components: no database, no request, no I/O."""
