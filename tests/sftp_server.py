"""A real SSH server with SFTP, for the tests' SSH remote: `python tests/sftp_server.py PORT PASSWORD`.
asyncssh (which DVC's SSH remote, dvc-ssh, is built on) serves this machine's files as the user
running it, to any user name with that password; it listens on 127.0.0.1 only and runs until killed."""

import asyncio
import sys

import asyncssh


class PasswordServer(asyncssh.SSHServer):
    def __init__(self, password: str):
        self.password = password

    def begin_auth(self, username: str) -> bool:
        return True  # authentication required

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return password == self.password


async def serve(port: int, password: str) -> None:
    await asyncssh.listen("127.0.0.1", port, server_factory=lambda: PasswordServer(password),
                          server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")], sftp_factory=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))
