"""The view-neutral tree: paths, control files and open handles over the core."""
