"""Start and stop Snowflake's emulator (`serve.py`) from a test, in any subproject's environment.

Standard library only: the tests of scripts-repo and dbt-repo import it, and
the emulator itself runs in this folder's own venv (`make setup` builds it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = HERE / ".venv" / "bin" / "python"


class Emulator:
    """fakesnow's HTTP server as a process; with `db_dir`, what it committed survives a restart."""

    def __init__(self, db_dir: Path | None = None, log: Path | None = None) -> None:
        self.db_dir = db_dir
        self.log = log
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> Emulator:
        if not PYTHON.exists():
            raise RuntimeError(
                f"the Snowflake emulator's environment is missing ({PYTHON}): run `make setup`"
            )
        args = [str(PYTHON), str(HERE / "serve.py"), *([str(self.db_dir)] if self.db_dir else [])]
        with open(self.log or os.devnull, "a", encoding="utf-8") as log:  # its statements and errors
            self._process = subprocess.Popen(
                args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
            )
        line = self._process.stdout.readline() if self._process.stdout else ""
        if not line.strip():
            self.stop()
            raise RuntimeError("the Snowflake emulator did not start")
        self.port = int(line)
        return self

    def stop(self) -> None:
        """End the server and every session it holds (their open transactions are lost, as on Snowflake)."""
        if self._process is not None:
            if self._process.stdin:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def connect_args(self) -> dict[str, object]:
        """What snowflake-connector-python needs to reach the emulator (any account and user)."""
        return {"host": "127.0.0.1", "port": self.port, "protocol": "http"}

    def environ(self, prefix: str = "SNOWFLAKE_") -> dict[str, str]:
        """The endpoint as the environment variables a client reads (`SNOWFLAKE_HOST`, `..._PORT`, ...)."""
        return {f"{prefix}HOST": "127.0.0.1", f"{prefix}PORT": str(self.port), f"{prefix}PROTOCOL": "http"}


def throwaway_private_key(path: Path) -> Path:
    """A new RSA key pair's private key (PKCS#8 PEM), for key-pair auth the emulator accepts from anyone.

    Made with openssl, which every machine that runs the tests has.
    """
    subprocess.run(
        [
            shutil.which("openssl") or "/usr/bin/openssl",
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            str(path),
        ],
        check=True,
        capture_output=True,
    )
    os.chmod(path, 0o600)
    return path
