#!/usr/bin/env python3
"""Turns the raw results scripts/bench records (a TSV) into the table, JSON and markdown.

usage: report.py RESULTS.tsv [--json FILE] [--markdown FILE]

Record kinds (tab-separated, first field):
  info  KEY VALUE                       about the run and the machine
  meta  WL LABEL UNIT BETTER TARGET     BETTER is higher|lower; TARGET e.g. "native>=0.95",
                                        "bindfs>=1.0", "native<=1.3", "abs<=1.5", "" for none
  val   WL SYSTEM ROUND VALUE           round 0 is the warm-up and is not counted
  cpu   WL ROUND SECONDS                vimgfs daemon utime+stime during one vimgfs run
  rss   WL KIB                          vimgfs daemon VmHWM seen during the workload
  note  WL TEXT
"""
import json
import statistics
import sys

SYSTEMS = ("native", "bindfs", "vimgfs")


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
                cpu.setdefault(p[1], []).append((int(p[2]), float(p[3])))
            elif kind == "rss":
                rss[p[1]] = max(rss.get(p[1], 0), int(p[2]))
            elif kind == "note":
                notes.setdefault(p[1], []).append(p[2])
    return info, order, meta, vals, cpu, rss, notes


def target_check(targets, ratios, median_v, unit=""):
    """(text, met or None) for comma-separated specs such as native>=0.95,bindfs>=1.0 or abs<=1.5."""
    texts, results = [], []
    for target in filter(None, targets.split(",")):
        op = ">=" if ">=" in target else "<="
        ref, num = target.split(op)
        num = float(num)
        value = median_v if ref == "abs" else ratios.get(ref)
        texts.append(("≥ " if op == ">=" else "≤ ") + fmt(num) + (" " + unit if ref == "abs" else "× " + ref))
        results.append(None if value is None else (value >= num if op == ">=" else value <= num))
    if not texts:
        return "", None
    met = None if None in results else all(results)
    return ", ".join(texts), met


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
        ratios = {}
        if "vimgfs" in med:
            for ref in ("native", "bindfs"):
                if med.get(ref):
                    ratios[ref] = med["vimgfs"] / med[ref]
        row["ratio_vs_native"] = ratios.get("native")
        row["ratio_vs_bindfs"] = ratios.get("bindfs")
        text, met = target_check(m["target"], ratios, med.get("vimgfs"), m["unit"])
        row["target"] = text
        row["target_met"] = met
        counted_cpu = [c for r, c in cpu.get(wl, []) if r > 0]
        row["daemon_cpu_s_per_run"] = statistics.mean(counted_cpu) if counted_cpu else None
        row["daemon_peak_rss_mib"] = rss[wl] / 1024 if wl in rss else None
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
    if not row["target"]:
        return ""
    mark = {True: " ✓", False: " ✗", None: ""}[row["target_met"]]
    return row["target"] + mark


HEAD = ["workload", "unit", "better", "native", "bindfs", "vimgfs", "vimgfs/native", "vimgfs/bindfs",
        "target", "daemon CPU s/run", "daemon peak RSS MiB"]


def table_rows(rows):
    out = []
    for r in rows:
        out.append([r["label"], r["unit"], r["better"], cell(r, "native"), cell(r, "bindfs"), cell(r, "vimgfs"),
                    ratio(r["ratio_vs_native"]), ratio(r["ratio_vs_bindfs"]), target_cell(r),
                    fmt(r["daemon_cpu_s_per_run"]), fmt(r["daemon_peak_rss_mib"])])
    return out


def text_table(rows):
    body = table_rows(rows)
    widths = [max(len(str(x[i])) for x in [HEAD] + body) for i in range(len(HEAD))]
    lines = []
    for j, x in enumerate([HEAD] + body):
        lines.append("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(x)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(info, rows):
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
        "| " + " | ".join(HEAD) + " |",
        "|" + "|".join("---" if i < 3 else "--:" for i in range(len(HEAD))) + "|"]
    for x in table_rows(rows):
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in x) + " |")
    lines += ["", "The ratios are of the medians; where lower is better, a ratio below 1× means vimgfs is faster. "
              "✓/✗: the issue's target, judged on this run. Daemon CPU: utime+stime of the vimgfs daemon per "
              "counted run; peak RSS: its VmHWM."]
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
