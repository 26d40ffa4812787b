"""Perspective Broker between hosts: the exporter on the owning host, the proxy elsewhere."""
