"""The element core: channels, processes, selects and the host that holds them.

Everything here returns Deferreds and knows nothing of files, paths or views.
"""
