#!/usr/bin/env python3
"""Loads a floodgate report.html in headless Chromium with the network off
and checks it is what README.md promises: one self-contained page.

- The page is opened from file:// with Network.emulateNetworkConditions
  offline and JavaScript disabled (Emulation.setScriptExecutionDisabled);
  every Network.requestWillBeSent is recorded, and any request but the page
  itself fails the check (a CDN, a font, an image, a script).
- Every chart's <figure id="chart-..."> holds an <svg> with at least one
  non-empty <path> or <polyline>. A figure marked data-state="not-sampled"
  (the report holds no data for it) must say "not sampled" instead; with
  --strict it fails.
- A full-page screenshot (Page.captureScreenshot) is saved and its path
  printed.

Talks the Chrome DevTools Protocol over a WebSocket (the websocket-client
package) to `chromium --headless --remote-debugging-port=0`, which binds
loopback only. Exit 0 when every check holds, 1 otherwise, 2 on bad usage.

Usage: check.py REPORT.html [--screenshot PNG] [--strict] [--chromium PATH]
"""

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket  # the websocket-client package

# What the page reports about its charts, evaluated in the page.
FIGURES_JS = r"""
JSON.stringify(Array.from(document.querySelectorAll('figure[id^="chart-"]')).map(f => {
  const svg = f.querySelector('svg');
  const drawn = svg ? Array.from(svg.querySelectorAll('path, polyline')).filter(e =>
      (e.getAttribute('d') || e.getAttribute('points') || '').trim().length > 0).length : 0;
  return {id: f.id, state: f.dataset.state || '', svg: !!svg, drawn: drawn,
          text: f.textContent, scripts: document.scripts.length};
}))
"""


class Cdp:
    """One DevTools session: numbered commands, events kept as they come."""

    def __init__(self, url):
        self.ws = websocket.create_connection(url, timeout=30)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method, deadline_s=30):
        end = time.monotonic() + deadline_s
        seen = [e for e in self.events if e["method"] == method]
        while not seen:
            if time.monotonic() > end:
                raise RuntimeError(f"no {method} within {deadline_s}s")
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg
        return seen[0]


def start_chromium(binary, profile):
    """Starts headless Chromium on a loopback debugging port it picks, and
    returns the process and the port (read from DevToolsActivePort)."""
    proc = subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        # Its own process group, so stop() ends its helpers with it.
        start_new_session=True)
    port_file = Path(profile) / "DevToolsActivePort"
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited {proc.returncode}: "
                               f"{proc.stderr.read().decode(errors='replace')[-2000:]}")
        if port_file.exists() and port_file.read_text().strip():
            return proc, int(port_file.read_text().split()[0])
        time.sleep(0.1)  # polling a file Chromium writes once it listens
    stop(proc)
    raise RuntimeError("chromium wrote no DevToolsActivePort within 30s")


def stop(proc):
    """Ends the Chromium this script started and its helper processes (its
    process group, by the leader's id)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("html", type=Path)
    ap.add_argument("--screenshot", type=Path)
    ap.add_argument("--strict", action="store_true",
                    help="fail on a chart the report holds no data for")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = ap.parse_args()
    if not args.html.is_file():
        print(f"check.py: {args.html}: no such file", file=sys.stderr)
        return 2
    page = args.html.resolve().as_uri()
    shot = (args.screenshot or args.html.with_name("report.png")).resolve()

    failures = []
    with tempfile.TemporaryDirectory(prefix="floodgate-html-",
                                     ignore_cleanup_errors=True) as profile:
        proc, port = start_chromium(args.chromium, profile)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
                targets = json.load(r)
            target = next(t for t in targets if t["type"] == "page")
            cdp = Cdp(target["webSocketDebuggerUrl"])
            cdp.call("Network.enable")
            cdp.call("Network.emulateNetworkConditions", offline=True, latency=0,
                     downloadThroughput=0, uploadThroughput=0)
            cdp.call("Page.enable")
            cdp.call("Emulation.setScriptExecutionDisabled", value=True)
            cdp.call("Emulation.setDeviceMetricsOverride", width=1100, height=900,
                     deviceScaleFactor=1, mobile=False)
            cdp.events.clear()
            cdp.call("Page.navigate", url=page)
            cdp.wait_for("Page.loadEventFired")
            figures = json.loads(cdp.call("Runtime.evaluate", expression=FIGURES_JS,
                                          returnByValue=True)["result"]["value"])
            height = cdp.call("Page.getLayoutMetrics")["cssContentSize"]["height"]
            cdp.call("Emulation.setDeviceMetricsOverride", width=1100,
                     height=int(height) + 1, deviceScaleFactor=1, mobile=False)
            png = cdp.call("Page.captureScreenshot", format="png")["data"]
            shot.write_bytes(base64.b64decode(png))
            requests = [e["params"]["request"]["url"] for e in cdp.events
                        if e["method"] == "Network.requestWillBeSent"]
        finally:
            stop(proc)

    others = [u for u in requests if u != page]
    print(f"requests: {len(requests)} ({len(others)} besides the page itself)")
    for u in others:
        failures.append(f"the page requested {u}")
    if page not in requests:
        failures.append(f"the page itself ({page}) was never requested: did it load?")
    if not figures:
        failures.append("no <figure id=\"chart-...\"> on the page")
    for f in figures:
        if f["state"] == "not-sampled":
            print(f"{f['id']}: not sampled")
            if "not sampled" not in f["text"]:
                failures.append(f"{f['id']} is marked not-sampled but does not say so")
            elif args.strict:
                failures.append(f"{f['id']}: not sampled (--strict)")
        elif not f["svg"]:
            failures.append(f"{f['id']} has no <svg>")
        elif f["drawn"] == 0:
            failures.append(f"{f['id']}'s <svg> has no non-empty <path> or <polyline>")
        else:
            print(f"{f['id']}: {f['drawn']} paths/polylines")
    if figures and figures[0]["scripts"]:
        failures.append(f"the page has {figures[0]['scripts']} <script> elements")
    print(f"screenshot: {shot}")
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
