"""The two SFTP transports (OpenSSH's client, paramiko) and what they share."""
