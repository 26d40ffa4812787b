"""Membership at scale, simulated: the real SWIM/Lifeguard code over an in-memory network.

    python bench/membership.py [--sizes 100,1000,5000] [--loss-seconds 600] [--hold 60]
                               [--big 5000] [--big-loss-seconds 60] [--big-hold 30]
                               [--big-tcp-loss-seconds S] [--big-cut-only]
                               [--loss-only] [--results FILE ...]
                               [--write docs/membership.md]

For each size N it builds a converged cluster of N real `Membership`s on
`circuit.membership.simulation.SimNetwork` (per-link latency uniform in 0.2-2 ms, each
message +-10%) under a simulated clock, and measures, one after the other on that cluster:

  load       messages and bytes each host sends per second, idle, over two full-exchange
             intervals (20 s), and what share of the bytes the full-state exchange is
  join       a new host joins through a random member: when 99.9% and 100% of the others
             had it, and when it knew all of them
  leave      a random member stops gracefully (says "left", waits up to 1 s, exits)
  crash      a random member's process dies: its connections reset at once (the others
             holding one hear it and probe at once), its port refuses
  silent     a random member goes silent: no answer, no reset (a pulled cable, a hung
             machine); it keeps running alone and its own conclusions are not counted
  refute     gossip alone: one host suspects a live member; when every host has the
             member's refutation (a higher incarnation), checked every 10 ms
  partition  20% of the hosts cut from the rest for --hold seconds, then healed
  loss       loss on every link for --loss-seconds: 5% and 10%, as TCP sees it
             (retransmitted after 200 ms, doubling) and as datagrams (dropped)

Sizes of --big and more use --big-loss-seconds and --big-hold (0: not run): a mass
suspicion is still O(N^2) in simulated messages (every host hears of every suspect, and
after the heal probes each member the far side called dead, if at four at a time), and
so are the full-state exchanges while views differ.
--big-cut-only measures the partition at those sizes without its heal, for a machine with
less memory: at 5,000 hosts the cut peaks at 11 GB, the heal at 19 GB (docs/membership.md).
--loss-only runs only the idle load and the loss runs, on a cluster where nobody is dead
(every host retries a dead member every 2 s).  --results FILE keeps the figures of each size
as JSON, saved after each scenario (several files merge; sizes measured now go into the
first; a --loss-only run of a size gives its loss rows to a run of that size's events), so
sizes can be run apart and written together, and a run stopped early keeps what it measured
(the rest reads "not run").  With --write the table goes into FILE between its "simulation"
markers.  The files behind the table in docs/membership.md are kept in bench/results/, so that
a size can be measured again and the table written without running the others.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import time
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from circuit.membership.simulation import Simulation  # noqa: E402
from circuit.membership.timing import Timing  # noqa: E402

BEGIN = "<!-- simulation: begin (written by bench/membership.py; edits inside are replaced) -->"
END = "<!-- simulation: end -->"
QUIET = 5.0  # simulated seconds between scenarios, for their gossip to die down


def measure(n: int, loss_seconds: float, hold: float, seed: int, events: bool = True,
            save=lambda out: None, heal: bool = True, tcp_loss_seconds: Optional[float] = None) -> dict:
    seconds = {"tcp": loss_seconds if tcp_loss_seconds is None else tcp_loss_seconds, "drop": loss_seconds}
    out: dict = {"n": n, "loss_seconds": loss_seconds, "hold": hold, "wall": {}, "loss_only": not events,
                 "command": "python bench/membership.py " + " ".join(sys.argv[1:]),
                 "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    started = time.monotonic()

    def phase(name, fn):
        t = time.monotonic()
        result = fn()
        out["wall"][name] = round(time.monotonic() - t, 1)
        shown = result
        if isinstance(result, tuple) and result and hasattr(result[0], "quantile"):
            shown = (result[0].quantile(0.999), result[0].all) + result[1:]
        elif hasattr(result, "quantile"):
            shown = (result.quantile(0.999), result.all)
        print(f"N={n} {name}: {shown}  ({out['wall'][name]} s wall, "
              f"{time.monotonic() - started:.0f} s in all)", flush=True)
        return result

    def kept(key, name, fn):  # a figure of the table: saved as soon as it is measured
        out[key] = phase(name, fn)
        save(out)
        return out[key]

    # No cyclic garbage collection: N^2 members live to the end, and the simulation makes
    # almost none (55 objects in 6 s of a 1,000-host partition), while the collector, even
    # run rarely, took a fifth of the wall time (it walks every young object and what it
    # points to).  Memory is what reference counting leaves: the peak below.
    gc.disable()
    sim = phase("build", lambda: Simulation(n, seed=seed))
    print(f"N={n}: built", flush=True)
    gc.freeze()
    phase("warm-up", lambda: sim.run(Timing().sync_interval + 2))

    def load():
        before = sim.net.counters.snapshot()
        window = 2 * Timing().sync_interval
        sim.run(window)
        return sim.load(before, window, sim.live())
    out["load"] = phase("load", load)

    def quiet(result):
        sim.run(QUIET)
        return result

    def losses_and_end() -> dict:  # each kind of loss for its length (0: not run)
        for mode in ("tcp", "drop"):
            for loss in (0.05, 0.10):
                key = f"{mode}{int(loss * 100)}"
                if not seconds[mode]:
                    out[key] = None
                    continue
                out[f"{key}_seconds"] = seconds[mode]
                kept(key, f"{mode} loss {loss:.0%}",
                     lambda: quiet(sim.lossy(loss, mode, seconds[mode])))
        out["wall"]["total"] = round(time.monotonic() - started, 1)
        out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        return out

    if not events:  # the loss runs alone, on a cluster where nobody is dead (each host
        # retries a dead member with a full state every 2 s, which slows the simulation)
        return losses_and_end()
    reach, own = phase("join", lambda: quiet(sim.join_one()))
    out["join"] = {"p999": reach.quantile(0.999), "all": reach.all, "newcomer": own}
    reach, failed = phase("leave", lambda: quiet(sim.leave_one()))
    out["leave"] = {"p999": reach.quantile(0.999), "all": reach.all, "as_failure": failed}
    for name, reset in (("crash", True), ("silent", False)):
        reach = phase(name, lambda: quiet(sim.crash_one(reset=reset)))
        out[name] = {"p999": reach.quantile(0.999), "all": reach.all}
    reach = phase("refute", lambda: quiet(sim.refute_one()))
    out["refute"] = {"p999": reach.quantile(0.999), "all": reach.all}
    live = sim.live()
    out["false_so_far"] = len(sim.departures(0, of={h.id for h in live}, observers=live))
    save(out)
    if hold and heal:
        kept("partition", "partition", lambda: quiet(sim.partition(0.2, hold=hold)))
    elif hold:  # the cut only: nothing after it would run on one cluster
        kept("partition", "partition", lambda: sim.partition(0.2, hold=hold, heal=False))
        seconds.update(tcp=0, drop=0)
    else:
        out["partition"] = None
    return losses_and_end()


# -- the table ---------------------------------------------------------------------------------

def s(x) -> str:
    return "never" if x is None else f"{x:.2f} s"


def pair(d: dict) -> str:
    return f"{s(d['p999'])} / {s(d['all'])}"


def anchor_crash(n: int) -> str:
    import math
    return f"{4 * max(1.0, math.log10(n)):.1f} s"


def table(results: list[dict], command: str) -> str:
    rs = sorted(results, key=lambda r: r["n"])
    runs = []
    for r in rs:
        for cmd, date in run_list(r):
            line = f"    {cmd}    # N = {r['n']:,}, {date}"
            if line not in runs:
                runs.append(line)
    head = "| | " + " | ".join(f"N = {r['n']:,}" for r in rs) + " | anchors (memberlist / Serf) |"
    rule = "|---" * (len(rs) + 2) + "|"
    rows = []

    def row(label, fn, anchor=""):
        rows.append(f"| {label} | " + " | ".join(fn(r) for r in rs) + f" | {anchor} |")

    row("join reaches 99.9% / 100% of members", lambda r: pair(r["join"]),
        "Serf model: 99.99% in about 2.2 s at N = 1,000")
    row("... and the newcomer knows every member after", lambda r: s(r["join"]["newcomer"]))
    row("graceful leave reaches 99.9% / 100%", lambda r: pair(r["leave"]) +
        (f" ({r['leave']['as_failure']} as a failure)" if r["leave"]["as_failure"] else ""),
        "memberlist: gossiped, as any change")
    row("crash, connections reset: declared dead by 99.9% / 100%", lambda r: pair(r["crash"]),
        "suspicion alone 4·log10(N) s: " + ", ".join(anchor_crash(r["n"]) for r in rs))
    row("crash, silent: declared dead by 99.9% / 100%", lambda r: pair(r["silent"]))
    row("gossip alone: a false suspicion's refutation held by 99.9% / 100%",
        lambda r: pair(r["refute"]) if "refute" in r else "not measured",
        "Serf model: 99.99% in about 2.2 s at N = 1,000")
    for mode, what in (("tcp", "as TCP sees it"), ("drop", "messages dropped")):
        for loss in (5, 10):
            row(f"false departures, {loss}% loss {what}",
                lambda r, k=f"{mode}{loss}": "not run" if r.get(k) is None else r[k] if isinstance(r[k], str) else (
                    f"{r[k]['departures']:,} ({r[k]['refutations']:,} refutations) over "
                    f"{r.get(k + '_seconds', r['loss_seconds']) / 60:.3g} min"),
                "aim: 0" if loss == 5 and mode == "tcp" else "")
    row("messages sent per host per second (mean / max)",
        lambda r: f"{r['load']['sent'][0]:.2f} / {r['load']['sent'][1]:.1f}",
        "memberlist: 1 probe/s + gossip to 3 nodes every 200 ms")
    row("bytes sent per host per second, Banana (mean / max)",
        lambda r: f"{kb(r['load']['bytes_sent'][0])} / {kb(r['load']['bytes_sent'][1])}")
    row("... of which the anti-entropy exchange",
        lambda r: kb(r["load"]["by_method"].get("sync", 0)),
        "push-pull every 30 s, scaled up with log N")
    row("... estimated on the wire (TLS records, TCP/IP headers)",
        lambda r: kb(r["load"]["wire_sent"][0]))
    def cut(fn):
        return lambda r: "not run" if not r.get("partition") else fn(r["partition"])
    row("20% partition: both sides saw the other gone after",
        lambda r: "not run" if not r.get("partition") else
        f"{s(r['partition']['split'])} (held {r['hold']:g} s)" if r["partition"]["split"] is not None
        else f"not within the {r['hold']:g} s it lasted")
    def side(r, key):
        x = r["partition"][key]
        return f"not within {r['hold']:g} s" if x is None else s(x)
    row("... the 80% saw the 20% gone / the 20% saw the 80% gone",
        lambda r: "not run" if not r.get("partition") else
        f"{side(r, 'a_saw_b_gone')} / {side(r, 'b_saw_a_gone')}" if "a_saw_b_gone" in r["partition"]
        else "not measured")
    row("... one membership again after the heal",
        cut(lambda p: "not simulated (the cut only)" if p.get("healed") is False else s(p["merged"])))
    row("... members lost for good / false departures on a side",
        cut(lambda p: f"{p['wrong']} during the cut" if p.get("healed") is False
            else f"{p['lost']} / {p['wrong']}"))
    row("false departures in the runs without loss",
        lambda r: "not counted" if r.get("false_so_far") is None else str(r["false_so_far"]))
    row("wall time of the simulation (peak memory)",
        lambda r: f"{wall_total(r):.0f} s" + (
            f" + {r['wall']['loss_only']:.0f} s for the loss runs" if "loss_only" in r["wall"] else "")
        + (f" ({r['rss_mb']:,} MB)" if r.get("rss_mb") else ""))
    machine = [("CPUs (nproc)", str(len(os.sched_getaffinity(0)))),
               ("python", platform.python_version()),
               ("load average at the end (1, 5, 15 min)", " ".join(f"{x:.2f}" for x in os.getloadavg()))]
    return "\n".join([
        BEGIN, "", "Measured by (from the repository root):", "", *runs, "",
        "and written here by:", "", f"    {command}", "",
        "Times are simulated seconds (per-link latency 0.2-2 ms), measured one after the other",
        "on one converged cluster per size; wall time is what the simulation took. 99.9% of",
        "fewer than 1,000 others is all of them.", "",
        "| machine | |", "|---|---|", *[f"| {k} | {v} |" for k, v in machine], "",
        head, rule, *rows, "", END])


def kb(x: float) -> str:
    return f"{x / 1024:.1f} KiB" if x >= 1024 else f"{x:.0f} B"


def write_section(path: str, block: str) -> None:
    with open(path) as f:
        text = f.read()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


LOSS = ("tcp5", "tcp10", "drop5", "drop10")


def merge(old: Optional[dict], new: dict) -> dict:
    """Figures of one size from two files.  Two runs of the events: the later wins.  A
    --loss-only run gives its loss rows to the other, row by row where it measured them
    (so that loss kinds run for different lengths, in different runs, go together)."""
    if old is None or not (loss_only(old) or loss_only(new)):
        return new
    events = [r for r in (old, new) if not loss_only(r)]
    out = dict(events[-1] if events else old)
    for src in (old, new):
        for k in LOSS:
            if src.get(k) is not None:
                out[k] = src[k]
                out[f"{k}_seconds"] = src.get(f"{k}_seconds", src["loss_seconds"])
    out["runs"] = run_list(old) + [x for x in run_list(new) if x not in run_list(old)]
    loss_wall = sum(wall_total(r) if loss_only(r) else r["wall"].get("loss_only", 0) for r in (old, new))
    out["wall"] = dict(events[-1]["wall"], loss_only=loss_wall) if events else {"total": loss_wall}
    out["rss_mb"] = max(old.get("rss_mb", 0), new.get("rss_mb", 0))
    return out


def loss_only(r: dict) -> bool:
    return r.get("loss_only", "join" not in r)  # (files written before the flag: no events)


def run_list(r: dict) -> list:
    return r.get("runs") or [[r["command"], r["date"]]]


def wall_total(r: dict) -> float:
    """Wall time of a run (a --loss-only run before it recorded one: the sum of its phases)."""
    w = r["wall"]
    return w["total"] if "total" in w else round(sum(v for k, v in w.items() if k != "loss_only"), 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100,1000,5000", help="comma-separated N, or none")
    p.add_argument("--loss-seconds", type=float, default=600.0)
    p.add_argument("--big", type=int, default=5000)
    p.add_argument("--big-loss-seconds", type=float, default=60.0)
    p.add_argument("--big-tcp-loss-seconds", type=float, default=None,
                   help="the loss as TCP sees it at the big sizes (default: --big-loss-seconds)")
    p.add_argument("--hold", type=float, default=60.0, help="seconds the partition lasts")
    p.add_argument("--big-hold", type=float, default=30.0)
    p.add_argument("--big-cut-only", action="store_true",
                   help="at sizes of --big and more, the partition is never healed")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--loss-only", action="store_true", help="only the idle load and the loss runs")
    p.add_argument("--results", action="append", default=[], help="JSON file(s) of results")
    p.add_argument("--write", metavar="FILE")
    args = p.parse_args()
    results: dict = {}
    for path in args.results:
        if os.path.exists(path):
            with open(path) as f:
                for k, v in json.load(f).items():
                    results[int(k)] = merge(results.get(int(k)), v)
    sizes = [] if args.sizes == "none" else [int(x) for x in args.sizes.split(",")]
    for n in sizes:
        loss_seconds = args.big_loss_seconds if n >= args.big else args.loss_seconds
        hold = args.big_hold if n >= args.big else args.hold
        def save(out: dict) -> None:
            if not args.results:
                return
            saved = {}
            if os.path.exists(args.results[0]):
                with open(args.results[0]) as f:
                    saved = json.load(f)
            saved[str(out["n"])] = out
            with open(args.results[0] + ".new", "w") as f:
                json.dump(saved, f, indent=1)
            os.replace(args.results[0] + ".new", args.results[0])
        results[n] = measure(n, loss_seconds, hold, args.seed, events=not args.loss_only, save=save,
                             heal=not (args.big_cut_only and n >= args.big),
                             tcp_loss_seconds=args.big_tcp_loss_seconds if n >= args.big else None)
        save(results[n])
    if args.write and results:
        command = "python bench/membership.py " + " ".join(sys.argv[1:])
        write_section(args.write, table(list(results.values()), command))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
