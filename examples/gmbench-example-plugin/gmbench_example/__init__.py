"""An example gmbench plugin package (see README.md beside it)."""
