"""The command language of the text views: ``ssh HOST COMMAND`` and the ``circuit`` command line.

Commands run against the whole circuit through a view's `Session`, as the mount's
own requests do; no view writes them again.  `usage` is plain Python (the command
line prints help without loading Twisted); `verbs` runs them.
"""
