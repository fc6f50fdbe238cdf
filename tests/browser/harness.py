"""What the browser tests drive: a real `tickflow serve` (embedded Kafka broker, in-memory
store, no feed) fed by `tickflow replay` as a user feeds it, its REST API, and Debian's
Chromium through ChromeDriver (WebDriver, via Selenium).

Chromium runs headless with host-resolver rules that make every name but the loopback address
unresolvable, and with its console and network logs recorded, so a test can prove the page
asked nothing of any other host.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
# How long `tickflow serve` may take to print its addresses.
SERVE_START_TIMEOUT_S = 60
# How long a graceful stop may take before the process is killed.
SERVE_STOP_TIMEOUT_S = 20
# Default wait for something the page shows.
PAGE_WAIT_S = 30
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


class Tickflow:
    """`tickflow serve --feed none` on loopback with its embedded broker and memory store."""

    def __init__(self, binary: str, workdir: Path, name: str, extra_env: dict | None = None):
        self.binary = binary
        self.log_path = workdir / f"{name}.log"
        env = {
            k: v
            for k, v in os.environ.items()
            # The instance must not pick up a database, broker or token from the caller.
            if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "API_TOKEN")
            and not k.startswith("TICKFLOW_")
        }
        env["RUST_LOG"] = "info"
        env["NO_COLOR"] = "1"
        env.update(extra_env or {})
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "--feed", "none", "--http-addr", "127.0.0.1:0", "--partitions", "2"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self.bootstrap, http = self._addresses()
        self.base = f"http://{http}"
        self.ws_base = f"ws://{http}"

    def _addresses(self) -> tuple[str, str]:
        deadline = time.monotonic() + SERVE_START_TIMEOUT_S
        bootstrap = http = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tickflow serve exited with {self.proc.returncode}; see {self.log_path}")
            text = self.log()
            m = re.search(r"kafka bootstrap: (\S+) \(embedded\)", text)
            bootstrap = m.group(1) if m else bootstrap
            m = re.search(r"listening on http://(\S+?)[\s)]", text)
            http = m.group(1) if m else http
            if bootstrap and http:
                return bootstrap, http
            time.sleep(0.2)
        raise RuntimeError(f"tickflow serve printed no addresses in {SERVE_START_TIMEOUT_S} s; see {self.log_path}")

    def log(self) -> str:
        return ANSI_ESCAPE.sub("", self.log_path.read_text(errors="replace"))

    def replay(self, rows: list[tuple[str, str, float, float]], workdir: Path, name: str) -> None:
        """Publishes trades `(symbol, RFC 3339 time, price, size)` with `tickflow replay`."""
        path = workdir / f"{name}.csv"
        with open(path, "w") as f:
            f.write("symbol,ts,price,volume\n")
            for symbol, ts, price, size in rows:
                f.write(f"{symbol},{ts},{price!r},{size!r}\n")
        out = subprocess.run(
            [self.binary, "replay", "--ticks", str(path), "--kafka-bootstrap", self.bootstrap],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise RuntimeError(f"tickflow replay failed ({out.returncode}): {out.stderr[-2000:]}")

    def get(self, path: str, token: str | None = None) -> tuple[int, object]:
        """Status and body: parsed JSON, or the text of anything else."""
        req = urllib.request.Request(self.base + path)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                status, body = res.status, res.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        try:
            return status, json.loads(body or b"null")
        except json.JSONDecodeError:
            return status, body.decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(SERVE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def browser(workdir: Path, width: int = 1400, height: int = 900):
    """A fresh headless Chromium (own profile) recording its console and network logs."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="profile-", dir=workdir)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        # Every other host fails to resolve: nothing outside this machine can be reached.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(workdir / "chromedriver.log"))
    return webdriver.Chrome(options=opts, service=service)


@dataclass
class BrowserLogs:
    console: list[dict]
    requests: list[str]


# Schemes of the browser's own pages (its new-tab page loads resources when it starts).
BROWSER_SCHEMES = ("chrome:", "chrome-untrusted:", "devtools:", "about:")


def drain_logs(driver) -> BrowserLogs:
    """Console entries, and every URL a web page requested (HTTP and WebSocket) since the
    last call. Requests the browser's own internal pages make for their own resources are
    left out; anything a web page asks for, whatever the scheme, is kept."""
    console = driver.get_log("browser")
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            url, document = params["request"]["url"], params.get("documentURL", "")
            if url.startswith(BROWSER_SCHEMES) and document.startswith(BROWSER_SCHEMES):
                continue
            requests.append(url)
        elif message.get("method") == "Network.webSocketCreated":
            requests.append(params["url"])
    return BrowserLogs(console, requests)


def wait_until(what: str, check, timeout: float = PAGE_WAIT_S, every: float = 0.2):
    """Polls `check` until it answers something truthy; fails naming `what` and the last answer.

    A check may raise while the page is between two states (an element replaced, a value not
    yet a number): that counts as "not yet".
    """
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (AssertionError, LookupError, ValueError, TypeError, WebDriverException) as e:
            last = f"{type(e).__name__}: {e}"
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last!r}")


class Runner:
    """Runs test functions in order, reporting each; the last line counts them."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name: str, fn, *args) -> bool:
        started = time.monotonic()
        try:
            fn(*args)
        except Exception:
            self.failed += 1
            print(f"FAIL {name} ({time.monotonic() - started:.1f} s)", flush=True)
            print("     " + traceback.format_exc().replace("\n", "\n     "), flush=True)
            return False
        self.passed += 1
        print(f"ok   {name} ({time.monotonic() - started:.1f} s)", flush=True)
        return True

    def fail(self, name: str, reason: str) -> None:
        self.failed += 1
        print(f"FAIL {name}: {reason}", flush=True)

    def summary(self) -> str:
        return f"chart page tests: {self.passed} passed, {self.failed} failed"


def fresh_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tickflow-browser-"))


def remove_workdir(path: Path, keep: bool) -> None:
    if keep:
        print(f"logs kept in {path}", flush=True)
    else:
        shutil.rmtree(path, ignore_errors=True)
