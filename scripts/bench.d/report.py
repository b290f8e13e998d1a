#!/usr/bin/env python3
"""Turns the raw results scripts/bench records (a TSV) into the table, JSON and markdown.

usage: report.py RESULTS.tsv [--json FILE] [--markdown FILE]

Record kinds (tab-separated, first field):
  info  KEY VALUE                       about the run and the machine
  meta  WL LABEL UNIT BETTER TARGET     BETTER is higher|lower; TARGET: comma-separated specs
                                        [SYSTEM:]REF(>=|<=)NUMBER, "" for none (see target_check);
                                        SPEC|SPEC… is met when any of them is
  val   WL SYSTEM ROUND VALUE           round 0 is the warm-up and is not counted
  cpu   WL SYSTEM ROUND SECONDS         a vimgfs daemon's utime+stime during one run on its system
  rss   WL SYSTEM KIB                   a vimgfs daemon's VmHWM seen during the workload
  note  WL TEXT
(cpu and rss records without SYSTEM, written before issue 9, are the default vimgfs system's.)

Systems: native, bindfs, vimgfs (the default mount), fuse (a mount with -o data=fuse), metrics
(the metrics group's mount again with -o metrics=, judged against the same mount without it);
skopeo is the registry workloads' reference (their vimgfs is the CLI).
"""
import json
import statistics
import sys

SYSTEMS = ("native", "bindfs", "vimgfs", "fuse", "metrics", "skopeo", "registry", "stream", "plain", "full")
MEASURED = ("vimgfs", "fuse")  # the systems whose ratios and daemons the table reports
REFS = ("native", "bindfs", "skopeo", "registry", "stream", "plain", "full")
NAMES = {"fuse": "vimgfs data=fuse", "metrics": "with -o metrics=", "registry": "docker-registry",
         "stream": "vimgfs one stream", "plain": "push --no-chunk-index", "full": "whole pull"}
SHORT = {"fuse": "data=fuse", "metrics": "with metrics"}  # in ratio headers and target texts


def short(system):
    return SHORT.get(system, system)


def fmt(x):
    if x is None:
        return "—"
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 1000:
        return "{:,.0f}".format(x)
    if a >= 100:
        return "%.0f" % x
    if a >= 10:
        return "%.1f" % x
    if a >= 1:
        return "%.2f" % x
    return "%.3g" % x


def load(path):
    info, order, meta = {}, [], {}
    vals, cpu, rss, notes = {}, {}, {}, {}
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            kind = p[0]
            if kind == "info":
                info[p[1]] = p[2]
            elif kind == "meta":
                wl = p[1]
                if wl not in meta:
                    order.append(wl)
                meta[wl] = {"label": p[2], "unit": p[3], "better": p[4], "target": p[5] if len(p) > 5 else ""}
            elif kind == "val":
                vals.setdefault(p[1], {}).setdefault(p[2], []).append((int(p[3]), float(p[4])))
            elif kind == "cpu":
                system, rnd, secs = ("vimgfs", p[2], p[3]) if len(p) == 4 else (p[2], p[3], p[4])
                cpu.setdefault(p[1], {}).setdefault(system, []).append((int(rnd), float(secs)))
            elif kind == "rss":
                system, kib = ("vimgfs", p[2]) if len(p) == 3 else (p[2], p[3])
                per = rss.setdefault(p[1], {})
                per[system] = max(per.get(system, 0), int(kib))
            elif kind == "note":
                notes.setdefault(p[1], []).append(p[2])
    return info, order, meta, vals, cpu, rss, notes


def parse_target(spec):
    """[SYSTEM:]REF(>=|<=)NUMBER → (system, ref, op, number); SYSTEM defaults to vimgfs, REF "abs"
    compares SYSTEM's own median with NUMBER, any other REF the ratio SYSTEM/REF of the medians."""
    system, _, rest = spec.rpartition(":")
    system = system or "vimgfs"
    op = ">=" if ">=" in rest else "<="
    ref, num = rest.split(op)
    if system not in SYSTEMS or (ref != "abs" and ref not in SYSTEMS):
        raise ValueError("target %r: systems are %s (REF may also be abs)" % (spec, ", ".join(SYSTEMS)))
    return system, ref, op, float(num)


def target_check(targets, med, unit=""):
    """[{spec, system, ref, op, number, text, value, met}] for comma-separated specs such as
    native>=0.98,fuse:bindfs>=1.0 or abs<=1.5; met is None when a median is missing."""
    checks = []
    for spec in filter(None, targets.split(",")):
        if "|" in spec:  # alternatives: met when any is ("≥ 1,000/s or ≥ 0.5× native, whichever is lower")
            alts = target_check(spec.replace("|", ","), med, unit)
            met = [a["met"] for a in alts]
            checks.append({"spec": spec, "system": alts[0]["system"], "ref": alts[0]["ref"], "op": alts[0]["op"],
                           "number": alts[0]["number"], "text": " or ".join(a["text"] for a in alts),
                           "value": alts[0]["value"], "met": True if True in met else None if None in met else False})
            continue
        system, ref, op, num = parse_target(spec)
        if ref == "abs":
            value = med.get(system)
        else:
            value = med[system] / med[ref] if med.get(system) is not None and med.get(ref) else None
        text = ("" if system == "vimgfs" else short(system) + " ") + ("≥ " if op == ">=" else "≤ ") + fmt(num) + (
            " " + unit if ref == "abs" else "× " + ref)
        met = None if value is None else (value >= num if op == ">=" else value <= num)
        checks.append({"spec": spec, "system": system, "ref": ref, "op": op, "number": num, "text": text,
                       "value": value, "met": met})
    return checks


def build(path):
    info, order, meta, vals, cpu, rss, notes = load(path)
    rows = []
    for wl in order:
        m = meta[wl]
        row = {"workload": wl, "label": m["label"], "unit": m["unit"], "better": m["better"], "systems": {}}
        med = {}
        for s in SYSTEMS:
            counted = [v for r, v in vals.get(wl, {}).get(s, []) if r > 0]
            warm = [v for r, v in vals.get(wl, {}).get(s, []) if r == 0]
            if counted:
                med[s] = statistics.median(counted)
                row["systems"][s] = {"median": med[s], "min": min(counted), "max": max(counted),
                                     "n": len(counted), "values": counted, "warmup": warm}
        row["ratios"] = {"%s/%s" % (s, ref): med[s] / med[ref]
                         for s in MEASURED if s in med for ref in REFS if med.get(ref)}
        row["ratio_vs_native"] = row["ratios"].get("vimgfs/native")
        row["ratio_vs_bindfs"] = row["ratios"].get("vimgfs/bindfs")
        row["targets"] = target_check(m["target"], med, m["unit"])
        row["target"] = ", ".join(t["text"] for t in row["targets"])
        results = [t["met"] for t in row["targets"]]
        row["target_met"] = None if not results or None in results else all(results)
        row["daemon"] = {}
        for s in MEASURED:
            counted_cpu = [c for r, c in cpu.get(wl, {}).get(s, []) if r > 0]
            peak = rss.get(wl, {}).get(s)
            if counted_cpu or peak is not None:
                row["daemon"][s] = {"cpu_s_per_run": statistics.mean(counted_cpu) if counted_cpu else None,
                                    "peak_rss_mib": peak / 1024 if peak is not None else None}
        row["daemon_cpu_s_per_run"] = row["daemon"].get("vimgfs", {}).get("cpu_s_per_run")
        row["daemon_peak_rss_mib"] = row["daemon"].get("vimgfs", {}).get("peak_rss_mib")
        row["notes"] = notes.get(wl, [])
        rows.append(row)
    return info, rows


def cell(row, s):
    d = row["systems"].get(s)
    if not d:
        return "—"
    if d["n"] == 1 or d["min"] == d["max"]:
        return fmt(d["median"])
    return "%s (%s–%s)" % (fmt(d["median"]), fmt(d["min"]), fmt(d["max"]))


def ratio(x):
    return "—" if x is None else "%.2f×" % x


def target_cell(row):
    """Each target with its own mark: one row may judge two systems. A ratio no column shows (one
    vimgfs mount against another) is given with its target."""
    def shown(t):
        value = " (%s)" % ratio(t["value"]) if t["ref"] not in REFS + ("abs",) and t["value"] is not None else ""
        return t["text"] + value + {True: " ✓", False: " ✗", None: ""}[t["met"]]
    return ", ".join(shown(t) for t in row["targets"])


def daemon_cell(row, key):
    """The daemons' figure, "vimgfs / data=fuse" where both ran."""
    values = [row["daemon"][s][key] for s in MEASURED if s in row["daemon"]]
    return " / ".join(fmt(v) for v in values) if values else "—"


def columns():
    """(header, cell function) of every column; columns empty in every row are left out."""
    cols = [("workload", lambda r: r["label"]), ("unit", lambda r: r["unit"]), ("better", lambda r: r["better"])]
    cols += [(NAMES.get(s, s), lambda r, s=s: cell(r, s)) for s in SYSTEMS]
    cols += [("%s/%s" % (short(s), ref), lambda r, k="%s/%s" % (s, ref): ratio(r["ratios"].get(k)))
             for s in MEASURED for ref in REFS]
    cols += [("target", target_cell),
             ("daemon CPU s/run", lambda r: daemon_cell(r, "cpu_s_per_run")),
             ("daemon peak RSS MiB", lambda r: daemon_cell(r, "peak_rss_mib"))]
    return cols


FIXED = 3  # workload, unit, better: always shown, left-aligned in markdown


def table(rows):
    """(header, body) with only the columns some row fills."""
    cols = columns()
    body = [[fn(r) for _, fn in cols] for r in rows]
    keep = [i for i in range(len(cols)) if i < FIXED or any(x[i] not in ("", "—") for x in body)]
    return [cols[i][0] for i in keep], [[x[i] for i in keep] for x in body]


def text_table(rows):
    head, body = table(rows)
    widths = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
    lines = []
    for j, x in enumerate([head] + body):
        lines.append("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(x)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(info, rows):
    head, body = table(rows)
    lines = ["Benchmark: `scripts/bench%s` — %s; %s rounds after a warm-up; median (min–max)." % (
        " --quick" if info.get("quick") == "1" else "", info.get("date", ""), info.get("rounds", "?")),
        "",
        "Machine: %s; %s cores; %s RAM; kernel %s; %s; store filesystem %s." % (
            info.get("cpu", "?"), info.get("cores", "?"), info.get("mem", "?"), info.get("kernel", "?"),
            info.get("java", "?"), info.get("fs", "?")),
        "",
        "Sizes: %s. Load average at start: %s. Workloads took %s s." % (
            info.get("sizes", "?"), info.get("loadavg_at_start", "?"), info.get("seconds", "?")),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" if i < FIXED else "--:" for i in range(len(head))) + "|"]
    for x in body:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in x) + " |")
    lines += ["", "vimgfs is the default mount (images are links to the store's blob files); vimgfs data=fuse a "
              "second mount of the same store with `-o data=fuse` (the daemon serves the bytes). The ratios are "
              "of the medians; where lower is better, a ratio below 1× means vimgfs is faster. ✓/✗: the issues' "
              "targets, judged on this run (\"data=fuse ≥ …\" judges the data=fuse mount). Daemon CPU: "
              "utime+stime of each vimgfs daemon per counted run; peak RSS: its VmHWM; \"a / b\" = vimgfs / "
              "vimgfs data=fuse."]
    notes = [(r["label"], n) for r in rows for n in r["notes"]]
    if notes:
        lines.append("")
        lines += ["- %s: %s" % (label, n) for label, n in notes]
    return "\n".join(lines) + "\n"


def main():
    args = sys.argv[1:]
    path = args.pop(0)
    json_out = md_out = None
    while args:
        a = args.pop(0)
        if a == "--json":
            json_out = args.pop(0)
        elif a == "--markdown":
            md_out = args.pop(0)
    info, rows = build(path)
    print("%s rounds after a warm-up%s; median (min–max). %s cores, %s, kernel %s, load average at start %s." % (
        info.get("rounds", "?"), " (--quick)" if info.get("quick") == "1" else "", info.get("cores", "?"),
        info.get("mem", "?"), info.get("kernel", "?"), info.get("loadavg_at_start", "?")))
    print("Sizes: %s." % info.get("sizes", "?"))
    print()
    print(text_table(rows))
    for r in rows:
        for n in r["notes"]:
            print("note: %s: %s" % (r["label"], n))
    if json_out:
        with open(json_out, "w") as f:
            json.dump({"info": info, "results": rows}, f, indent=1, ensure_ascii=False)
            f.write("\n")
    if md_out:
        with open(md_out, "w") as f:
            f.write(markdown(info, rows))


if __name__ == "__main__":
    main()
