"""A real IMAP server for tests: Debian's Dovecot (``make dovecot``) on a free loopback port.

Started in the foreground (``dovecot -F``) with a temporary configuration of its own: passwd-file
authentication, one maildir per user in a temporary folder, no TLS (the tests use ``?tls=none`` on
loopback), every other listener off. Run as root (CI), the login and mail processes use the package's
unprivileged ``dovenull``/``dovecot`` users; run as anyone else, that user. Stopped (SIGTERM, then SIGKILL)
and its folder removed at the end; the package's own service is never touched.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def dovecot_missing() -> str | None:
    if not Path(DOVECOT).exists():
        return "Debian's Dovecot (dovecot-imapd) is not installed; `make dovecot` installs it"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dovecot:
    """``with Dovecot({"frontline@example.com": "pw"}) as server: server.url(user, password)``."""

    def __init__(self, users: dict[str, str], *, tls: bool = False):
        self.users = users
        self.tls = tls
        self.port = free_port()
        self.tls_port = free_port() if tls else 0  # implicit TLS (imaps); with tls the plain port offers STARTTLS
        self.cafile = ""
        self.dir = Path(tempfile.mkdtemp(prefix="frontline-dovecot-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def _accounts(self) -> tuple[str, str, str, int, int]:
        """(internal user, its group, login user, mail uid, mail gid)."""
        if os.geteuid() == 0:
            mail = pwd.getpwnam("dovecot")
            return "dovecot", grp.getgrgid(mail.pw_gid).gr_name, "dovenull", mail.pw_uid, mail.pw_gid
        me = pwd.getpwuid(os.geteuid())
        return me.pw_name, grp.getgrgid(os.getegid()).gr_name, me.pw_name, os.geteuid(), os.getegid()

    def _write_config(self) -> Path:
        internal, group, login, uid, gid = self._accounts()
        d = self.dir
        for sub in ("run", "state", "mail"):
            (d / sub).mkdir()
        ssl = "ssl = no"
        if self.tls:  # a self-signed certificate for 127.0.0.1, its own CA (tests/mailserver.py)
            from mailserver import make_certificate

            self.cafile, key = make_certificate(d)
            ssl = f"ssl = yes\nssl_cert = <{self.cafile}\nssl_key = <{key}"
        (d / "passwd").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()))
        if os.geteuid() == 0:  # the mail processes run as the dovecot user: they own the maildirs
            os.chmod(d, 0o755)
            os.chown(d / "mail", uid, gid)
        config = f"""
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/passwd
  default_fields = uid={uid} gid={gid} home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
"""
        path = d / "dovecot.conf"
        path.write_text(config)
        return path

    def start(self) -> Dovecot:
        config = self._write_config()
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}: {out}{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"dovecot did not answer on 127.0.0.1:{self.port} within 30 s: {self.log()}")

    def log(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop the server (it is down afterwards: connections are refused), keep its mail."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        if proc.stdout:
            proc.stdout.close()

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, user: str, password: str, folder: str = "INBOX") -> str:
        from urllib.parse import quote

        return f"imap://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/{folder}?tls=none"
