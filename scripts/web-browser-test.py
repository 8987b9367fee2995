#!/usr/bin/env python3
"""Browser test of the web console in headless Chromium (Debian's, driven by Playwright) against a running lab.

Run by scripts/test-web.sh, which brings the lab up under the machine-wide lab lock. Chromium runs inside the lab's
gateway namespace (through `clevervm lab exec gw`), the only place that reaches the lab's addresses; this script
runs outside and also drives the lab's faults. Screenshots go to OUT (look at them).

With BASE=http://127.0.0.1:PORT/ USER=… PASSWORD=… (CleverWebTests' BrowserTests, a console on the in-memory
cluster) it runs Chromium directly and skips the steps that need a lab (the ping cut).
"""
import json
import os
import re
import subprocess
import sys
import time

from playwright.sync_api import expect, sync_playwright

CLEVERVM = os.environ.get("CLEVERVM", ".build/debug/clevervm")
OUT = os.environ.get("OUT", ".build/web-screenshots")
LAB_STATE = os.environ.get("LAB_STATE", "/run/clevervm-lab/clevervm")
VM = os.environ.get("VM", "mba7")


def lab(*args):
    print("+ clevervm lab " + " ".join(args), flush=True)
    subprocess.run([CLEVERVM, "lab", *args], check=True, stdout=subprocess.DEVNULL)


def ping_cut(page, alpha, target, back, check):
    page.goto(alpha)
    page.evaluate("window.__noReload = true")
    lab("cut-ping", target)
    row = page.locator(f'tr[data-resource="{VM}"]')
    # Exactly "Started": not "→ Started", the scheduler's target while the move is still under way.
    expect(row.locator("td.cell").nth(0 if back == "alpha" else 1)).to_have_text(re.compile(r"^\s*Started\s*$"), timeout=120_000)
    check("the overview followed the ping loss without a reload", page.evaluate("window.__noReload === true"))
    page.screenshot(path=os.path.join(OUT, "04-ping-cut.png"), full_page=True)
    lab("restore-ping", target)



VOLUME_BIN = os.environ.get("CLEVERVM_VOLUME", os.path.join(os.path.dirname(os.path.abspath(CLEVERVM)), "clevervm-volume"))
SPLIT = os.environ.get("SPLIT_VOLUME", "scratch")


def volume(host, *args, check=True):
    """clevervm-volume COMMAND on a lab host's volume process (its control socket), the reply's JSON."""
    out = subprocess.run([CLEVERVM, "lab", "exec", host, "--", VOLUME_BIN, *args, "--socket", f"/run/clevervm/{SPLIT}.ctl", "--json"],
                         check=check, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else {}


def wait_volume(host, what, predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        status = volume(host, "status", check=False).get("status") or {}
        if predicate(status):
            return status
        if time.monotonic() > deadline:
            raise RuntimeError(f"{SPLIT} on {host}: {what} did not happen in {timeout} s; last status {status}")
        time.sleep(0.5)


def write_blocks(host, first, count, pattern):
    """Writes COUNT 4 KiB blocks from block FIRST through the volume's NBD export (only a Primary exports)."""
    subprocess.run([CLEVERVM, "lab", "exec", host, "--", "qemu-io", "-f", "raw", "-c",
                    f"write -P {pattern} {first * 4096} {count * 4096}", f"nbd+unix:///?socket=/run/clevervm/{SPLIT}.nbd"],
                   check=True, stdout=subprocess.DEVNULL)


def plant_split_brain():
    """The replication link is cut (both sides disconnect), the Primary writes 12 blocks, the other side is promoted
    alone and writes 3, then demoted; reconnected, both sides find a split brain (the volume's after-sb policies are
    DRBD's default: disconnect) and stay StandAlone until an operator resolves it. Returns (primary, other)."""
    in_sync = lambda s: s.get("connection") == "Connected" and s.get("disk") == "UpToDate" and s.get("peerDisk") == "UpToDate"
    wait_volume("alpha", "in sync with a Primary", lambda s: in_sync(s) and "Primary" in (s.get("role"), s.get("peerRole")))
    alpha = volume("alpha", "status")["status"]
    primary, other = ("alpha", "beta") if alpha["role"] == "Primary" else ("beta", "alpha")
    print(f"planting a split brain on {SPLIT}: Primary {primary}, other {other}", flush=True)
    for host in (primary, other):
        volume(host, "disconnect")
    write_blocks(primary, 0, 12, "0xaa")
    volume(other, "promote", "--peer-outdated")
    write_blocks(other, 100, 3, "0xbb")
    volume(other, "demote")
    for host in (primary, other):
        volume(host, "connect")
    wait_volume("alpha", "split brain detected", lambda s: s.get("splitBrain") is not None, timeout=60)
    return primary, other


def resolve_split_brain(page, base, check, prefix, volume_name, discard, counts):
    """The guided flow: the volumes page shows the split brain, the dry run each side's block counts, confirm, the
    page shows the resync finished — without a reload."""
    page.goto(base + "volumes")
    row = page.locator(f'tr[data-volume="{volume_name}"]')
    expect(row.locator(".split-brain")).to_be_visible(timeout=30_000)
    check("the volumes page shows the split brain", row.locator(".split-brain").count() == 1)
    page.screenshot(path=os.path.join(OUT, prefix + "07-volumes-split-brain.png"), full_page=True)
    page.evaluate("window.__noReload = true")
    page.select_option("#volume-name", volume_name)
    page.select_option("#discard-host", discard)
    page.click("[data-action=resolve-dry-run]")
    expect(page.locator("#resolve-step")).to_be_visible()
    text = page.locator("#resolve-counts").inner_text()
    check("the dry run shows each side's block counts", all(c in text for c in counts))
    check("the dry run shows the command",
          page.locator("#resolve-command").inner_text() == f"clevervm volume resolve {volume_name} --discard {discard}")
    page.screenshot(path=os.path.join(OUT, prefix + "08-split-brain-dry-run.png"), full_page=True)
    page.click("[data-action=resolve-confirm]")
    expect(row.locator(".split-brain")).to_have_count(0, timeout=60_000)
    # The resync finished: this host's side is Connected and UpToDate, in sync (nothing out of sync), on the page.
    expect(row.locator("td").nth(2)).to_contain_text("Connected", timeout=60_000)
    expect(row.locator("td").nth(2)).to_contain_text("UpToDate")
    expect(row.locator("td").nth(4)).to_have_text(re.compile(r"^\s*in sync\s*$"), timeout=60_000)
    check("the page shows the split brain resolved without a reload", page.evaluate("window.__noReload === true"))
    page.screenshot(path=os.path.join(OUT, prefix + "09-split-brain-resolved.png"), full_page=True)


SCREEN_PIXELS = """() => {
  const canvas = document.querySelector('#screen canvas');
  if (!canvas || !canvas.width || !canvas.height) return {width: 0, height: 0, lit: 0};
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let lit = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] > 60) lit++;
  return {width: canvas.width, height: canvas.height, lit: lit};
}"""


def log_in(page, base, login):
    """Logs into the console at BASE (each host's console has its own sessions)."""
    page.goto(base)
    if "/login" in page.url:
        page.fill("#user", login["user"])
        page.fill("#password", login["password"])
        page.click("button[type=submit]")
        page.wait_for_url(base)


def consoles(browser, login, check, prefix):
    """The VM's screen (noVNC) and serial console, opened on the console of a host that does NOT run the VM, so the
    bytes cross the console relay between hosts: noVNC reports connected and the canvas shows the guest's screen
    (not all black); a command typed into the serial console is answered by the guest's shell."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    first = sorted(login["urls"])[0]
    log_in(page, login["urls"][first], login)
    page.goto(login["urls"][first] + f"vm/{VM}")
    runs_on = page.locator("#vm-facts").get_attribute("data-host")
    if page.locator("#open-screen").count() == 0:
        print(f"{VM} has no display: vnc; no console checks", flush=True)
        context.close()
        return
    elsewhere = next((h for h in sorted(login["urls"]) if h != runs_on), first)
    base = login["urls"][elsewhere]
    print(f"{VM} runs on {runs_on}; its screen and serial console from the console of {elsewhere}", flush=True)
    log_in(page, base, login)
    page.goto(base + f"vm/{VM}")
    page.click("#open-screen")
    page.wait_for_url(base + f"vm/{VM}/screen")
    status = page.locator("#screen-status")
    expect(status).to_have_attribute("data-state", "connected", timeout=60_000)
    check("noVNC reports connected (through the relay of the VM's host)", status.get_attribute("data-state") == "connected")
    deadline = time.monotonic() + 60
    pixels = page.evaluate(SCREEN_PIXELS)
    while pixels["lit"] < 200 and time.monotonic() < deadline:
        time.sleep(1)
        pixels = page.evaluate(SCREEN_PIXELS)
    print(f"screen {pixels['width']}x{pixels['height']}, {pixels['lit']} pixels not black", flush=True)
    check("the VM's screen is drawn (canvas has non-black pixels)", pixels["lit"] >= 200)
    page.screenshot(path=os.path.join(OUT, prefix + "10-screen-novnc.png"), full_page=True)

    page.goto(base + f"vm/{VM}/serial")
    expect(page.locator("#serial-status")).to_have_attribute("data-state", "connected", timeout=60_000)
    output = page.locator("#serial-output")
    # A first Enter brings a fresh prompt; then a command whose answer is not its echo.
    page.fill("#serial-input", "")
    page.press("#serial-input", "Enter")
    answer = f"WEB-{6 * 7}"
    page.fill("#serial-input", "echo WEB-$((6 * 7))")
    page.press("#serial-input", "Enter")
    expect(output).to_contain_text(answer, timeout=30_000)
    check("the serial console answers a typed command (echo WEB-$((6 * 7)) → WEB-42)", answer in output.inner_text())
    # Typed straight into the output, as into a terminal.
    output.click()
    page.keyboard.type("echo KEYS-$((40 + 2))")
    page.keyboard.press("Enter")
    expect(output).to_contain_text("KEYS-42", timeout=30_000)
    check("keys typed into the serial output reach the guest", "KEYS-42" in output.inner_text())
    page.screenshot(path=os.path.join(OUT, prefix + "11-serial-console.png"), full_page=True)

    # The VM moves live to the host of this console: the page sees its console close, opens it again where the VM
    # runs now (this host's own socket, no relay), and the same shell answers.
    print(f"+ clevervm migrate --node {runs_on} --to {elsewhere}", flush=True)
    subprocess.run([CLEVERVM, "lab", "exec", runs_on, "--", "clevervm", "migrate", "--node", runs_on, "--to", elsewhere],
                   check=True, stdout=subprocess.DEVNULL)
    expect(page.locator("#console-host")).to_have_text(f"on {elsewhere}", timeout=120_000)
    expect(page.locator("#serial-status")).to_have_attribute("data-state", "connected", timeout=60_000)
    deadline = time.monotonic() + 60
    while "MOVED-42" not in output.inner_text() and time.monotonic() < deadline:
        page.fill("#serial-input", "echo MOVED-$((50 - 8))")
        page.press("#serial-input", "Enter")
        try:
            expect(output).to_contain_text("MOVED-42", timeout=5_000)
        except AssertionError:
            expect(page.locator("#serial-status")).to_have_attribute("data-state", "connected", timeout=30_000)
    check("after a live move the serial page reconnected by itself and the same shell answers", "MOVED-42" in output.inner_text())
    page.screenshot(path=os.path.join(OUT, prefix + "12-serial-after-move.png"), full_page=True)
    subprocess.run([CLEVERVM, "lab", "exec", runs_on, "--", "clevervm", "unmigrate", "--node", runs_on], check=True, stdout=subprocess.DEVNULL)
    context.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    in_lab = "BASE" not in os.environ
    if in_lab:
        login = json.load(open(os.path.join(LAB_STATE, "console-login.json")))
        alpha = login["urls"]["alpha"]
        wrapper = os.path.join(OUT, "chromium-in-lab")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec %s lab exec gw -- /usr/bin/chromium \"$@\"\n" % os.path.abspath(CLEVERVM))
        os.chmod(wrapper, 0o755)
    else:
        login = {"user": os.environ["USER"], "password": os.environ["PASSWORD"]}
        alpha = os.environ["BASE"]
        wrapper = "/usr/bin/chromium"
    prefix = "" if in_lab else "local-"
    checks = []

    def check(name, condition):
        checks.append((name, bool(condition)))
        print(("ok   " if condition else "FAIL ") + name, flush=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=wrapper, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(ignore_https_errors=True, viewport={"width": 1400, "height": 900})
        page.set_default_timeout(30_000)

        # 1. No access without login: the console sends us to the login page.
        page.goto(alpha)
        check("unauthenticated visit lands on the login page", "/login" in page.url)
        page.fill("#user", login["user"])
        page.fill("#password", "wrong-password-123")
        page.click("button[type=submit]")
        check("a wrong password is refused", page.locator(".alert-danger").is_visible())
        page.fill("#user", login["user"])
        page.fill("#password", login["password"])
        page.click("button[type=submit]")
        page.wait_for_url(alpha)
        expect(page.locator(f'tr[data-resource="{VM}"]')).to_be_visible()
        expect(page.locator("#live-state")).to_have_text("live")
        page.screenshot(path=os.path.join(OUT, prefix + "01-overview.png"), full_page=True)
        check("the overview shows the VM", page.locator(f'tr[data-resource="{VM}"]').count() == 1)

        # 2. Migrate with its preview, and watch the page follow the move without a reload.
        page.goto(alpha + f"vm/{VM}")
        source = page.locator("#vm-facts").get_attribute("data-host")
        page.evaluate("window.__noReload = true")
        page.click("[data-action=migrate-preview]")
        expect(page.locator("#preview")).to_be_visible()
        preview = page.locator("#preview-actions").inner_text()
        check("the preview lists the VM's migration", VM in preview and "migrate" in preview)
        check("the preview shows the equivalent command", "clevervm migrate --node" in page.locator("#preview-command").inner_text())
        page.screenshot(path=os.path.join(OUT, prefix + "02-migrate-preview.png"), full_page=True)
        started = time.monotonic()
        page.click("[data-action=migrate-confirm]")
        target = "beta" if source == "alpha" else "alpha"
        expect(page.locator("#vm-host")).to_have_text(target, timeout=120_000)
        moved_after = time.monotonic() - started
        check("the VM page followed the move without a reload", page.evaluate("window.__noReload === true"))
        if in_lab:  # the in-memory cluster runs no VM agent, so it records no move
            expect(page.locator("#vm-last-move")).to_contain_text(f"to {target}")
        page.screenshot(path=os.path.join(OUT, prefix + "03-after-move.png"), full_page=True)
        print(f"move seen on the page {moved_after:.1f} s after confirm", flush=True)
        page.click('[data-path="/api/v1/unmigrate"]')
        expect(page.locator("#result")).to_contain_text("clevervm unmigrate")

        # 3. Cut the VM host's ping: the VM leaves it; the overview follows.
        back = source
        if in_lab:
            ping_cut(page, alpha, target, back, check)
        # 4. What if: a host failure, simulated, changes nothing.
        page.goto(alpha + "whatif")
        page.select_option("#whatif-kind", "node-down")
        page.select_option("#whatif-node", back)
        page.click("[data-action=whatif-add]")
        page.click("[data-action=whatif-run]")
        expect(page.locator("#whatif-result")).to_be_visible()
        check("what-if shows the command", "node-down " + back in page.locator("#whatif-command").inner_text())
        page.screenshot(path=os.path.join(OUT, prefix + "05-whatif.png"), full_page=True)

        # 5. Events, filtered by the VM, with explain links.
        page.goto(alpha + f"events?vm={VM}")
        check("events link to explain", page.locator(f'a[href="/explain/{VM}"]').count() > 0)
        page.screenshot(path=os.path.join(OUT, prefix + "06-events.png"), full_page=True)
        # 6. A split brain, resolved through the guided flow: in the lab planted on a spare volume's real processes;
        # on the in-memory cluster reported by CleverWebTests' TestVolume.
        if in_lab:
            primary, other = plant_split_brain()
            resolve_split_brain(page, alpha, check, prefix, SPLIT, other, [f"{primary} changed 12 blocks", f"{other} changed 3 blocks"])
        else:
            resolve_split_brain(page, alpha, check, prefix, "disk0", "beta", ["alpha changed 12 blocks", "beta changed 3 blocks"])
        # 7. The VM's screen and serial console (a real VM in the lab; the in-memory cluster runs none).
        if in_lab:
            consoles(browser, login, check, prefix)
        browser.close()

    failed = [name for name, ok in checks if not ok]
    print(f"{len(checks) - len(failed)}/{len(checks)} browser checks passed; screenshots in {OUT}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
