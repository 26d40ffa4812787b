"""The SSH view: the circuit tree through OpenSSH's sftp, scp and ssh COMMAND."""
