"""`ongea-pesa serve` started the way a person starts it, for the tests that need the real process: a free
port, its output drained (and kept) on a thread so it never blocks, stopped with SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading


class ServeProcess:
    """`ongea-pesa serve` as a person runs it; its output is drained (and kept) so it never blocks."""

    def __init__(self, args: list[str], env: dict[str, str], *, limit: float = 120) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voice_server.cli", "serve", "--port", "0", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        found = threading.Event()
        self.base = ""

        def drain() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                match = re.search(r"listening on (http://\S+)", line)
                if match and not self.base:
                    self.base = match.group(1)
                    found.set()
            found.set()

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        found.wait(limit)
        if not self.base:
            self.stop()
            raise AssertionError("server did not start:\n" + self.log())

    def log(self) -> str:
        return "".join(self.lines[-80:])

    def output(self) -> str:
        """Everything it printed (after `stop`, to its last line)."""
        return "".join(self.lines)

    def stop(self) -> int:
        """SIGTERM, then its exit status (killed if it takes longer than 40 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._drain.join(timeout=10)
        return self.proc.returncode
