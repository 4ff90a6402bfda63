"""Web dashboard benchmark: first paint and the tab's renderer CPU at 3,000 events/s (issue 13).

    /work/main/.venv/bin/python bench/bench_web.py [--rate 3000] [--seconds 10] [--runs 3]

The server and its load are bench_dashboard.py's (``serve_and_feed``, imported:
a real JacmonServer on a fresh database, then ``--rate`` ``module.progressed``
events/s over 500 learners once told to go). The page is the instructor page
(GET /) in Debian's Chromium (``/usr/bin/chromium``, headless, the flags of
tests/web/conftest.py) through Playwright's sync API. Measured:

- first paint, ``--runs`` fresh page loads (a new browser context each, so a
  cold cache): navigation start -> all six panels ``data-loaded``, read in the
  page with ``performance.now()`` by a MutationObserver an init script installs,
  with the steps in between (HTML, scripts, /whoami, sockets open, first frame,
  each panel) from the same clock;
- CPU over the load window (``--seconds`` minus 1 s of ramp-up and 1 s of
  tail): the tab's renderer process (``--type=renderer``; with one tab there is
  one busy renderer), and, separately, the browser, GPU and utility (network
  service) processes, each as % of one core; render-loop draws/s
  (``jacmonPage.loop.draws``) and WebSocket frames/s received by the page.

Then, in the same invocation and against an identically prepared server
(fresh database, same child, same rate and duration), bench_dashboard.py runs
as it is, so the terminal dashboard's first paint and CPU print beside the
web's. The two do not share one load window: on a 2-core box the browser and
the terminal client would take CPU from each other and from the server.

Bounded: every wait has a timeout, the load runs ``--seconds``, the processes
started here are stopped by PID (the browser in ``finally``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Chromium's path and flags, as the browser tests launch it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "web"))

from bench_dashboard import serve_and_feed
from chromium import CHROMIUM, CHROMIUM_ARGS
from common import BENCH_DIR, machine_facts, write_json

PANELS = ("progress", "activity", "trends", "alerts", "learners", "connection")
#: The server's metrics sampler takes its first sample this long after start (the
#: default ``metrics_interval_s`` is 2 s); the Trends panel counts as loaded from its
#: first sample, so page loads wait until the server has one, as a running server would.
FIRST_SAMPLE_S = 2.5
#: Longest wait for a page to show all panels, in milliseconds.
LOAD_TIMEOUT_MS = 15000
RESULTS = BENCH_DIR / "results" / "bench_web.json"

#: Installed before any page script: counts WebSocket frames and records, on the
#: page's own clock (ms since navigation start), when the body is signed in, each
#: panel gets data-loaded, and all six have it. The observer disconnects then.
INIT_SCRIPT = """
(() => {
  const PANELS = __PANELS__;
  const b = (globalThis.__bench = {
    panels: {}, allLoaded: null, nextFrame: null, signedIn: null, drawsAtLoaded: null,
    sockets: [], frames: 0, chars: 0,
  });
  const Native = globalThis.WebSocket;
  class Counted extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const s = { url: String(url).replace(/[?].*/, ""), created: performance.now(),
                  opened: null, first: null, frames: 0 };
      b.sockets.push(s);
      this.addEventListener("open", () => { s.opened = performance.now(); });
      this.addEventListener("message", (e) => {
        if (s.first === null) s.first = performance.now();
        s.frames += 1;
        b.frames += 1;
        b.chars += typeof e.data === "string" ? e.data.length : 0;
      });
    }
  }
  globalThis.WebSocket = Counted;
  const observer = new MutationObserver(() => {
    const now = performance.now();
    if (b.signedIn === null && document.body && document.body.classList.contains("signed-in")) {
      b.signedIn = now;
    }
    for (const p of PANELS) {
      const section = document.querySelector(`section[data-panel="${p}"]`);
      if (b.panels[p] == null && section && section.dataset.loaded === "true") b.panels[p] = now;
    }
    if (b.allLoaded === null && PANELS.every((p) => b.panels[p] != null)) {
      b.allLoaded = now;
      const page = globalThis.jacmonPage;
      b.drawsAtLoaded = page && page.loop ? page.loop.draws : null;
      requestAnimationFrame(() => { b.nextFrame = performance.now(); });
      observer.disconnect();
    }
  });
  observer.observe(document, { subtree: true, attributes: true,
                               attributeFilter: ["data-loaded", "class"] });
})();
""".replace("__PANELS__", json.dumps(list(PANELS)))

#: The page's own timeline of one load, in ms since navigation start.
TIMELINE_JS = """
() => {
  const b = globalThis.__bench;
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  const end = (part) => {
    const hits = res.filter((r) => r.name.includes(part));
    return hits.length ? Math.max(...hits.map((r) => r.responseEnd)) : null;
  };
  const scripts = res.filter((r) => r.name.endsWith(".js"));
  const opened = b.sockets.map((s) => s.opened).filter((t) => t !== null);
  const firsts = b.sockets.map((s) => s.first).filter((t) => t !== null);
  return {
    html_response_end: nav.responseEnd,
    dom_content_loaded: nav.domContentLoadedEventEnd,
    dashboard_js_end: end("/static/dashboard.js"),
    all_scripts_end: scripts.length ? Math.max(...scripts.map((r) => r.responseEnd)) : null,
    script_count: scripts.length,
    whoami_end: end("/whoami"),
    alert_rules_end: end("alert-rules.json"),
    signed_in: b.signedIn,
    first_socket_created: b.sockets.length ? Math.min(...b.sockets.map((s) => s.created)) : null,
    all_sockets_open: opened.length === b.sockets.length && opened.length
      ? Math.max(...opened) : null,
    first_frame: firsts.length ? Math.min(...firsts) : null,
    every_stream_first_frame: firsts.length === b.sockets.length && firsts.length
      ? Math.max(...firsts) : null,
    sockets: b.sockets.map((s) => ({ url: s.url, opened: s.opened, first: s.first })),
    panels: b.panels,
    all_loaded: b.allLoaded,
    next_frame: b.nextFrame,
    draws_at_loaded: b.drawsAtLoaded,
  };
}
"""

COUNTERS_JS = """
() => ({ draws: globalThis.jacmonPage ? globalThis.jacmonPage.loop.draws : null,
         frames: globalThis.__bench.frames, chars: globalThis.__bench.chars,
         now: performance.now() })
"""


# Chromium's processes


def chromium_processes() -> dict[int, str]:
    """PID -> kind ("browser", "renderer", "gpu-process", "utility", ...) of the Chromium
    processes under this one (Playwright's driver starts the browser)."""
    import psutil

    found: dict[int, str] = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            cmd = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if not cmd or "chrom" not in Path(cmd[0]).name:
            continue
        kind = next((a.split("=", 1)[1] for a in cmd if a.startswith("--type=")), "browser")
        found[proc.pid] = kind
    return found


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds so far of each PID still alive."""
    import psutil

    out: dict[int, float] = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        out[pid] = t.user + t.system
    return out


# The web phase


def load_page(browser, url: str) -> tuple[Any, Any, float]:
    """A fresh context and page at ``url`` with the init script; (context, page, goto wall s)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(INIT_SCRIPT)
    page = context.new_page()
    page.set_default_timeout(LOAD_TIMEOUT_MS)
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_function("() => globalThis.__bench && globalThis.__bench.nextFrame !== null")
    return context, page, time.perf_counter() - started


def web_phase(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    port = 18000 + (os.getpid() + 1) % 1000
    ready, go = multiprocessing.Event(), multiprocessing.Event()
    server = multiprocessing.Process(
        target=serve_and_feed,
        args=(port, str(tmp / "web.db"), args.rate, args.seconds, ready, go),
    )
    server.start()
    result: dict[str, Any] = {}
    try:
        if not ready.wait(30):
            raise RuntimeError("the server child did not start within 30 s")
        server_ready = time.monotonic()
        url = f"http://127.0.0.1:{port}/"
        with sync_playwright() as pw:
            launched = time.perf_counter()
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                result["chromium_launch_s"] = round(time.perf_counter() - launched, 3)
                time.sleep(max(0.0, server_ready + FIRST_SAMPLE_S - time.monotonic()))
                result["first_paint_runs"] = [first_paint(browser, url) for _ in range(args.runs)]
                result |= cpu_under_load(browser, url, args, go)
            finally:
                browser.close()
        go.set()  # in case the load never started: let the child finish
        server.join(args.seconds + 30)
    finally:
        if server.is_alive():
            server.terminate()
            server.join(10)
    return result


def first_paint(browser, url: str) -> dict[str, Any]:
    context, page, goto_s = load_page(browser, url)
    try:
        timeline = page.evaluate(TIMELINE_JS)
    finally:
        context.close()
    timeline["goto_to_next_frame_wall_s"] = round(goto_s, 3)
    return timeline


def cpu_under_load(browser, url: str, args: argparse.Namespace, go) -> dict[str, Any]:
    """One tab, loaded and idle, then the load: CPU of each Chromium process over the window.

    With ``--profile DIR`` the window also runs V8's sampling profiler and a Chrome
    trace (both cost CPU: the CPU numbers of such a run are not the benchmark's).
    """
    profiled: dict[str, Any] = {}
    context, page, _ = load_page(browser, url)
    try:
        if args.skip_draw:
            # Diagnostic only: these panels stop drawing after first paint (cost attribution).
            page.evaluate(
                "names => names.forEach(n => { globalThis.jacmonPage.panels[n].draw = () => {}; })",
                args.skip_draw,
            )
        if args.page_js:
            # Diagnostic only: what-if changes to the running page (e.g. fewer rows, CSS).
            page.evaluate(args.page_js)
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.wait_for_timeout(1000)
        procs = chromium_processes()

        def sample() -> tuple[float, dict[int, float], dict[str, Any], dict[str, float]]:
            cpu = cpu_by_pid(list(procs))
            counters = page.evaluate(COUNTERS_JS)
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            return time.monotonic(), cpu, counters, metrics

        idle0 = sample()
        page.wait_for_timeout(2000)
        idle1 = sample()
        go.set()
        page.wait_for_timeout(1000)  # let the load reach its rate before measuring
        if args.profile:
            cdp.send("Profiler.enable")
            cdp.send("Profiler.setSamplingInterval", {"interval": 500})
            cdp.send("Profiler.start")
            browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
        t0 = sample()
        page.wait_for_timeout(max(1.0, args.seconds - 2.0) * 1000)
        t1 = sample()
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            js = cdp.send("Profiler.stop")["profile"]
            (args.profile / "renderer.cpuprofile").write_text(json.dumps(js))
            trace = json.loads(browser.stop_tracing())
            (args.profile / "trace.json").write_text(json.dumps(trace))
            profiled = {"js_self": js_self_times(js), "trace_self": trace_self_times(trace)}
    finally:
        context.close()
    load = window(procs, t0, t1)
    idle = window(procs, idle0, idle1)
    return {"processes": procs, "load": load, "idle": idle, "profile": profiled}


TRACE_CATEGORIES = [
    "devtools.timeline",
    "disabled-by-default-devtools.timeline",
    "v8.execute",
    "toplevel",
]


def js_self_times(profile: dict[str, Any], top: int = 20) -> list[dict[str, Any]]:
    """The V8 profile's functions by self time (% of the profiled time), biggest first."""
    total = sum(node["hitCount"] for node in profile["nodes"]) or 1
    by_fn: dict[str, int] = {}
    for node in profile["nodes"]:
        frame = node["callFrame"]
        where = Path(frame["url"]).name if frame["url"] else ""
        key = f"{frame['functionName'] or '(anonymous)'} {where}:{frame['lineNumber'] + 1}"
        by_fn[key] = by_fn.get(key, 0) + node["hitCount"]
    ranked = sorted(by_fn.items(), key=lambda kv: -kv[1])[:top]
    return [{"function": k, "self_pct": round(v * 100 / total, 1)} for k, v in ranked]


def trace_self_times(trace: dict[str, Any], top: int = 20) -> list[dict[str, Any]]:
    """Self time by event name on the busiest renderer main thread, % of the traced time."""
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    mains = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M"
        and e.get("name") == "thread_name"
        and e.get("args", {}).get("name") == "CrRendererMain"
    }
    complete = [e for e in events if e.get("ph") == "X" and (e["pid"], e["tid"]) in mains]
    if not complete:
        return []
    counts: dict[tuple[int, int], int] = {}
    for e in complete:
        counts[(e["pid"], e["tid"])] = counts.get((e["pid"], e["tid"]), 0) + 1
    busiest = max(counts, key=counts.get)
    mine = sorted(
        (e for e in complete if (e["pid"], e["tid"]) == busiest),
        key=lambda e: (e["ts"], -e.get("dur", 0)),
    )
    self_us: dict[str, float] = {}
    stack: list[list[Any]] = []  # [end, name, own duration, children's time]

    def close(item: list[Any]) -> None:
        _, name, dur, children = item
        self_us[name] = self_us.get(name, 0.0) + max(0.0, dur - children)

    for e in mine:
        start, dur = e["ts"], e.get("dur", 0)
        while stack and stack[-1][0] <= start:
            close(stack.pop())
        if stack:
            stack[-1][3] += dur
        stack.append([start + dur, e["name"], dur, 0.0])
    while stack:
        close(stack.pop())
    span = (max(e["ts"] + e.get("dur", 0) for e in mine) - mine[0]["ts"]) or 1
    ranked = sorted(self_us.items(), key=lambda kv: -kv[1])[:top]
    return [{"event": k, "self_pct": round(v * 100 / span, 1)} for k, v in ranked]


def window(procs: dict[int, str], a, b) -> dict[str, Any]:
    """CPU % of one core per Chromium process kind, draws/s and frames/s between two samples."""
    (ta, cpu_a, ca, ma), (tb, cpu_b, cb, mb) = a, b
    wall = tb - ta
    per_pid = {pid: (cpu_b[pid] - cpu_a[pid]) * 100 / wall for pid in cpu_a if pid in cpu_b}
    renderers = sorted(
        ((pct, pid) for pid, pct in per_pid.items() if procs[pid] == "renderer"), reverse=True
    )
    by_kind: dict[str, float] = {}
    for pid, pct in per_pid.items():
        kind = procs[pid]
        if kind == "renderer" and renderers and pid == renderers[0][1]:
            kind = "renderer (the tab)"
        elif kind == "renderer":
            kind = "renderer (other)"
        by_kind[kind] = by_kind.get(kind, 0.0) + pct
    page_s = (cb["now"] - ca["now"]) / 1000
    main_thread = {
        name: round((mb.get(name, 0) - ma.get(name, 0)) * 100 / page_s, 1)
        for name in ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
    }
    return {
        "wall_s": round(wall, 2),
        "cpu_pct_of_one_core": {k: round(v, 1) for k, v in sorted(by_kind.items())},
        "cpu_pct_all_chromium": round(sum(per_pid.values()), 1),
        "tab_renderer_pid": renderers[0][1] if renderers else None,
        "renderers": len(renderers),
        "draws_per_s": round((cb["draws"] - ca["draws"]) / page_s, 1),
        "frames_per_s": round((cb["frames"] - ca["frames"]) / page_s, 1),
        "kchars_per_s": round((cb["chars"] - ca["chars"]) / page_s / 1000, 1),
        "main_thread_pct_by_cdp": main_thread,
    }


# The terminal phase


def terminal_phase(args: argparse.Namespace) -> dict[str, Any]:
    """bench_dashboard.py as it is, against its own fresh server at the same rate."""
    cmd = [
        sys.executable,
        str(BENCH_DIR / "bench_dashboard.py"),
        "--rate",
        str(args.rate),
        "--seconds",
        str(args.seconds),
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=args.seconds + 120, cwd=BENCH_DIR.parent
    )
    out = done.stdout
    start = out.rfind('{\n  "rate_events_per_s"')
    if start == -1:
        raise RuntimeError(f"bench_dashboard.py printed no result:\n{out}\n{done.stderr}")
    result = json.loads(out[start:])
    sent = re.search(r'\{"sent": \d+, "send_s": [\d.]+\}', out)
    if sent:
        result["producer"] = json.loads(sent.group(0))
    return result


# Output


def med(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def report(args: argparse.Namespace, web: dict[str, Any], term: dict[str, Any] | None) -> None:
    runs = web["first_paint_runs"]
    print("\nWeb first paint, ms since navigation start (one fresh context each):")
    steps = [
        ("html responseEnd", "html_response_end"),
        ("DOMContentLoaded", "dom_content_loaded"),
        ("all module scripts", "all_scripts_end"),
        ("/whoami answered", "whoami_end"),
        ("alert-rules.json", "alert_rules_end"),
        ("signed in (body class)", "signed_in"),
        ("first socket created", "first_socket_created"),
        ("all 4 sockets open", "all_sockets_open"),
        ("first frame", "first_frame"),
        ("every stream's 1st frame", "every_stream_first_frame"),
        *((f"panel {p} loaded", p) for p in PANELS),
        ("ALL SIX LOADED", "all_loaded"),
        ("next animation frame", "next_frame"),
    ]
    print(f"  {'step':28}" + "".join(f"{f'run {i + 1}':>8}" for i in range(len(runs))))
    for label, key in steps:
        cells = [r["panels"].get(key) if key in PANELS else r.get(key) for r in runs]
        print(f"  {label:28}" + "".join(f"{ms(c):>8}" for c in cells))
    load, idle = web["load"], web["idle"]
    fp_web = med([r["all_loaded"] for r in runs])
    fp_term = term.get("first_paint_s") if term else None
    cpu_web = load["cpu_pct_of_one_core"].get("renderer (the tab)")
    cpu_term = term.get("cpu_pct_of_one_core") if term else None
    print(f"\nChromium launch (not in first paint): {web['chromium_launch_s']:.2f} s")
    print(f"Web CPU, idle tab (2 s): {json.dumps(idle['cpu_pct_of_one_core'])}")
    print(
        f"Web CPU at {args.rate} events/s ({load['wall_s']} s): "
        f"{json.dumps(load['cpu_pct_of_one_core'])}, all Chromium {load['cpu_pct_all_chromium']}"
    )
    main_thread = json.dumps(load["main_thread_pct_by_cdp"])
    print(f"  renderer main thread by CDP (% of wall): {main_thread}")
    print(
        f"  draws/s {load['draws_per_s']}, frames/s {load['frames_per_s']}, "
        f"{load['kchars_per_s']} kchars/s; renderers seen: {load['renderers']}"
    )
    for key, label in (("js_self", "function"), ("trace_self", "event")):
        rows = web.get("profile", {}).get(key)
        if rows:
            print(f"\nProfiled ({key}): top {label}s by self time, % of the window")
            for row in rows:
                print(f"  {row['self_pct']:5.1f}  {row[label]}")
    print("\n| measure | target | web | terminal |")
    print("|---|---|---|---|")
    fp_runs = " / ".join(f"{r['all_loaded'] / 1000:.2f}" for r in runs)
    term_fp = "-" if fp_term is None else f"{fp_term:.2f} s"
    print(f"| first paint | <= 1.0 s | median {fp_web / 1000:.2f} s ({fp_runs}) | {term_fp} |")
    term_cpu = "-" if cpu_term is None else f"{cpu_term:.1f} %"
    print(
        f"| CPU at {args.rate} events/s | <= 30 % of one core | "
        f"{cpu_web:.1f} % (tab renderer) | {term_cpu} (dashboard process) |"
    )
    print(f"| draws/s | <= ~15 | {load['draws_per_s']} | - |")
    print("\ncommand:", " ".join([Path(sys.executable).as_posix(), *sys.argv]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=3000, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration")
    parser.add_argument("--runs", type=int, default=3, help="fresh page loads for first paint")
    parser.add_argument(
        "--profile",
        type=Path,
        help="also profile the load window (V8 profile + Chrome trace) into this directory",
    )
    parser.add_argument(
        "--skip-draw",
        type=lambda text: [name for name in text.split(",") if name],
        default=[],
        metavar="PANEL,...",
        help="diagnostic: these panels stop drawing during the CPU window (not the benchmark)",
    )
    parser.add_argument(
        "--page-js",
        metavar="JS",
        help="diagnostic: evaluate this in the page before the CPU window (not the benchmark)",
    )
    parser.add_argument(
        "--no-terminal", action="store_true", help="skip the terminal dashboard's run"
    )
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing; install Debian's chromium")
    facts = machine_facts()
    print("loadavg before:", " ".join(facts.get("loadavg", [])), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="jacmon-bench-web-"))
    web = web_phase(args, tmp)
    term = None if args.no_terminal else terminal_phase(args)
    report(args, web, term)
    write_json(
        RESULTS,
        {
            "machine": facts,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "web": web,
            "terminal": term,
        },
    )
    print("results:", RESULTS)


if __name__ == "__main__":
    main()
