from setuptools import find_packages, setup

setup(
    name="circuit",
    version="0.1.0",
    description="Distributed control for a cluster of hosts, driven through a file system",
    python_requires=">=3.10",
    packages=find_packages(include=["circuit", "circuit.*"]) + ["twisted.plugins"],
    package_data={"twisted": ["plugins/circuit_plugin.py"]},
    # A host with a mount needs pyfuse3 (and libfuse3): the "fuse" extra.  Without it,
    # circuit runs as a client (circuit.client, circuit --url) or a host without -m.
    install_requires=[
        "twisted[conch,tls]>=24.7",
        "pyopenssl",
        "service-identity",
        "automat",
    ],
    extras_require={"fuse": ["pyfuse3>=3.3"], "test": ["pytest", "pytest-timeout", "hypothesis"]},
    entry_points={"console_scripts": ["circuit = circuit.cli.main:main"]},
)
