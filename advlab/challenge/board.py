"""The leaderboard: ranked rows per track as CSV and JSON, and one static, sortable HTML page.

The page (``index.html``) holds everything it needs (no server, no script or style from the
network): one table per track, ranked by the track's key (attack: accuracy left, lower is
better; defense: union accuracy, higher is better; submissions that are not ranked, such as a
defense below the clean floor or a refused file, are listed last without a rank). Clicking a
column header sorts by it (numbers as numbers), clicking again reverses. Every value a student
controls (the name, messages) is HTML-escaped.
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path

from .results import Entry

KEYS = {"attack": ("accuracy left", "asc"), "defense": ("union accuracy", "desc")}
TITLES = {"attack": "Attack track: accuracy the attack leaves (lower is better)",
          "defense": "Defense track: union accuracy under the trusted attacks (higher is better)"}


def _key(e: Entry, track: str) -> float:
    name, order = KEYS[track]
    v = e.metrics.get(name)
    v = float(v) if isinstance(v, (int, float)) else float("nan")
    return v if order == "asc" else -v


def rank(entries: list[Entry], track: str) -> list[dict]:
    """Leaderboard rows, best first; equal keys share a rank; unranked entries last."""
    ranked = sorted((e for e in entries if e.ranked), key=lambda e: (_key(e, track), e.student))
    rest = sorted((e for e in entries if not e.ranked), key=lambda e: e.student)
    rows, last, pos = [], None, 0
    for i, e in enumerate(ranked, start=1):
        k = round(_key(e, track), 6)
        pos = pos if k == last else i
        last = k
        rows.append(_row(e, pos))
    rows += [_row(e, None) for e in rest]
    return rows


def _row(e: Entry, pos: int | None) -> dict:
    row = {"rank": pos, "student": e.student}
    for k, v in e.metrics.items():
        row[k] = round(v, 2) if isinstance(v, float) else v
    row["score"] = round(e.score, 2)
    row["seconds"] = round(e.seconds, 1)
    row["notes"] = " | ".join((e.problems if not e.ranked else []) + e.flags)[:300]
    row["sha256"] = e.sha256[:12]
    if e.isolation:
        row["isolation"] = e.isolation
    return row


def columns(rows: list[dict]) -> list[str]:
    """Every column that occurs, in first-seen order."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    tail = [c for c in ("score", "seconds", "notes", "isolation", "sha256") if c in cols]
    return [c for c in cols if c not in tail] + tail


def gradescope_leaderboard(e: Entry) -> list[dict]:
    """Gradescope's ``leaderboard`` list for one entry."""
    name, order = KEYS[e.track]
    v = e.metrics.get(name)
    if not e.ranked or not isinstance(v, (int, float)):
        return []
    out = [{"name": name + " (%)", "value": round(float(v), 2), "order": order}]
    clean = e.metrics.get("clean accuracy")
    if isinstance(clean, (int, float)):
        out.append({"name": "clean accuracy (%)", "value": round(float(clean), 2)})
    return out


def write_track_files(ch, track: str, rows: list[dict], out_dir: Path) -> None:
    """``OUT/<track>.csv`` and ``OUT/<track>.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = columns(rows)
    with open(out_dir / f"{track}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: "" if r.get(c) is None else r.get(c) for c in cols})
    key, order = KEYS[track]
    info = {"challenge": ch.name, "track": track, "key": key, "order": order,
            "evaluation": _evaluation(ch, track), "n": ch.n, "columns": cols, "rows": rows,
            "isolation": sorted({r["isolation"] for r in rows if r.get("isolation")})}
    (out_dir / f"{track}.json").write_text(json.dumps(info, indent=2) + "\n")


def _evaluation(ch, track: str) -> str:
    if track == "attack":
        model = ch.attack.model.get("zoo") or "a hidden model"
        return (f"{ch.attack.threat} against {model}; every returned input re-checked by the "
                f"grader (threat model, [0, 1], finite, shape, dtype) on {ch.n} held-out images")
    d = ch.defense
    how = ("the trusted attacks (advlab.presets.trusted_attacks)" if d.strength == "strong" else
           f"the '{d.strength}' attacks (NOT the trusted evaluation: numbers are upper bounds)")
    return (f"union of {', '.join(d.threats)} with {how} on {ch.n} held-out images; clean "
            f"accuracy floor {100 * d.clean_floor:.1f}%; gradient masking checked by "
            f"advlab.diagnose on {d.diagnose_n} images")


# ---------------------------------------------------------------------------------------------
# HTML

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-bottom:2em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3;cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"} th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.unranked td{color:#888}
p.meta{color:#555;max-width:60em}
"""

_SCRIPT = """
document.querySelectorAll('table.board').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var asc = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
        var nx = parseFloat(x), ny = parseFloat(y), c;
        if (x === '' && y === '') c = 0; else if (x === '') return 1; else if (y === '') return -1;
        else if (!isNaN(nx) && !isNaN(ny)) c = nx - ny; else c = x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _cell(v) -> str:
    if v is None:
        return '<td data-v=""></td>'
    num = isinstance(v, (int, float)) and not isinstance(v, bool)
    shown = f"{v:.2f}" if isinstance(v, float) else str(v)
    cls = ' class="num"' if num else ""
    return f'<td{cls} data-v="{html.escape(str(v), quote=True)}">{html.escape(shown)}</td>'


def table_html(info: dict) -> str:
    """One track's table."""
    cols = info["columns"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in info["rows"]:
        cls = ' class="unranked"' if r.get("rank") is None else ""
        body.append(f"<tr{cls}>" + "".join(_cell(r.get(c)) for c in cols) + "</tr>")
    track = html.escape(info["track"])
    weak = ("<p class=\"meta\"><b>Graded with WEAK isolation</b> (no namespaces: see "
            "docs/grading.md).</p>\n" if "none" in info.get("isolation", []) else "")
    return (f'<h2>{html.escape(TITLES.get(info["track"], track))}</h2>\n'
            f'<p class="meta">{html.escape(info.get("evaluation", ""))}</p>\n{weak}'
            f'<table class="board" id="{track}"><thead><tr>{head}</tr></thead>\n'
            f'<tbody>{"".join(body)}</tbody></table>')


def render(infos: list[dict], title: str) -> str:
    """The whole page."""
    tables = "\n".join(table_html(i) for i in infos) or "<p>No results yet.</p>"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n"
            f"<body><h1>{html.escape(title)}</h1>\n"
            "<p class=\"meta\">Click a column header to sort. Produced by "
            "<code>advlab challenge board</code>.</p>\n"
            f"{tables}\n<script>{_SCRIPT}</script></body></html>\n")


def write_html(out_dir: Path, site: Path | None = None) -> Path:
    """``index.html`` from every ``<track>.json`` in ``out_dir`` (written to ``site`` or
    ``out_dir``); returns its path."""
    out_dir = Path(out_dir)
    infos = []
    for track in KEYS:
        p = out_dir / f"{track}.json"
        if p.is_file():
            infos.append(json.loads(p.read_text()))
    if not infos:
        raise FileNotFoundError(f"no attack.json or defense.json in {str(out_dir)!r}: run "
                                "`advlab challenge grade` first")
    name = infos[0].get("challenge", "challenge")
    target = Path(site) if site is not None else out_dir
    target.mkdir(parents=True, exist_ok=True)
    path = target / "index.html"
    path.write_text(render(infos, f"{name}: leaderboard"))
    return path
