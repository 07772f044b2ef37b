"""Small shared pieces: logging, subprocess calls, deadlines."""

import os
import subprocess
import sys
import time


class HarnessError(Exception):
    """The lab itself could not do what was asked (as opposed to a scenario's assertion failing)."""


_t0 = time.monotonic()
_log_file = None


def set_log_file(fh):
    global _log_file
    _log_file = fh


def log(msg, quiet=False):
    line = f"[{time.monotonic() - _t0:7.2f}] {msg}"
    if not quiet:
        print(line, flush=True)
    if _log_file is not None:
        _log_file.write(line + "\n")
        _log_file.flush()


def run(cmd, check=True, capture=False, timeout=900, **kw):
    """subprocess.run with a deadline (apt-get included: nothing here may hang the harness)."""
    try:
        res = subprocess.run(cmd, text=True, capture_output=capture, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"{' '.join(map(str, cmd))} did not finish within {timeout} s") from None
    if check and res.returncode != 0:
        err = (res.stderr or "").strip() if capture else ""
        raise HarnessError(f"{' '.join(map(str, cmd))} exited {res.returncode} {err}")
    return res


class Deadline:
    """A point in time every wait is measured against."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self):
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.end


def is_root():
    return os.geteuid() == 0


def eprint(*a):
    print(*a, file=sys.stderr, flush=True)
