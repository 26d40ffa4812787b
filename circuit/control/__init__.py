"""The ``circuit`` command line's way into a host: its local control socket, or (``--url``) the same frames over its TLS port."""
