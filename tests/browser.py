"""A headless Chromium driven over the DevTools protocol on a pipe (stdlib only): load a page, read the text it
renders (shadow roots included: TensorBoard's Polymer elements keep their tables there, which `--dump-dom`
leaves out), click, take a screenshot."""
import base64
import fcntl
import json
import os
import shutil
import subprocess
import time

EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")

# The text of the document and of every open shadow root under it, depth first, without styles and scripts.
DEEP_TEXT = """(() => {
  const parts = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { parts.push(node.textContent); return; }
    if (["STYLE", "SCRIPT", "TEMPLATE"].includes(node.tagName)) return;
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(document.documentElement);
  return parts.join(" ").replace(/\\s+/g, " ");
})()"""

# Click every checkbox (paper-checkbox, shadow roots included) whose label matches the regex LABEL and whose
# checked state differs from CHECKED; returns how many were clicked.
CLICK_CHECKBOXES = """((label, checked) => {
  const found = [];
  const walk = (node) => {
    if (node.tagName === "PAPER-CHECKBOX") found.push(node);
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.children || []) walk(child);
  };
  walk(document.documentElement);
  let clicked = 0;
  for (const box of found) {
    if (new RegExp(label).test(box.textContent.trim()) && box.checked !== checked) { box.click(); clicked++; }
  }
  return clicked;
})"""


def executable():
    """The Chromium on PATH, or None."""
    return next((path for path in map(shutil.which, EXECUTABLES) if path), None)


def pipe_fds(commands, replies):
    """In the child: the pipe Chromium reads commands from on fd 3, the one it writes replies to on fd 4."""
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands, replies)]   # clear of 3 and 4 first
    os.dup2(high[0], 3)
    os.dup2(high[1], 4)


class Browser:
    """One headless Chromium page; use as a context manager."""

    def __init__(self, width=1400, height=900):
        self.size, self.next_id, self.session = (width, height), 0, None

    def __enter__(self):
        to_browser, from_us = os.pipe()
        to_us, from_browser = os.pipe()
        self.proc = subprocess.Popen(
            [executable(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--remote-debugging-pipe", f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=lambda: pipe_fds(to_browser, from_browser))
        os.close(to_browser)
        os.close(from_browser)
        self.writer, self.reader, self.buffer = os.fdopen(from_us, "wb"), os.fdopen(to_us, "rb"), b""
        page = next(t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride", width=self.size[0], height=self.size[1], deviceScaleFactor=1,
                  mobile=False)
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        self.writer.close()
        self.reader.close()

    def send(self, method, **params):
        """One DevTools command; its result (events in between are skipped)."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        self.writer.write(json.dumps(message).encode() + b"\0")
        self.writer.flush()
        while True:
            while b"\0" not in self.buffer:
                chunk = os.read(self.reader.fileno(), 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe during {method}")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page."""
        return self.send("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def open(self, url):
        self.send("Page.navigate", url=url)

    def text(self):
        """The text the page renders, shadow roots included."""
        return self.evaluate(DEEP_TEXT)

    def wait_for_text(self, needles, seconds=60):
        """The page's text once it holds every string in needles; the last text seen when time runs out."""
        deadline, text = time.monotonic() + seconds, ""
        while time.monotonic() < deadline:
            text = self.text() or ""
            if all(n in text for n in needles):
                break
            time.sleep(0.5)
        return text

    def set_checkboxes(self, label, checked):
        """Check (or uncheck) every checkbox whose label matches the regex label; how many changed."""
        return self.evaluate(f"{CLICK_CHECKBOXES}({json.dumps(label)}, {json.dumps(checked)})")

    def screenshot(self, path):
        """The page as a PNG at path."""
        data = self.send("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
