"""The cluster's certificate authority, host certificates and TLS options."""
