"""The studio's glue: one city folder on disk, and the CLI's own functions applied to it.

Nothing here settles, checks, explains, tests or diffs by itself: each method calls what the
matching ``yibao`` command calls (``compiler.check_text`` as ``yibao check``, ``engine.settle`` as
``yibao demo``, ``explain_claim`` as ``yibao explain``, ``run_case`` /
``coverage`` as ``yibao test``, ``diff_policies`` as ``yibao diff``) and returns plain values
for the page (``app.py``) to show. No NiceGUI here, so the glue is tested without a browser.

Writes: only files directly inside the folder, each saved atomically (a temporary file in the
same folder, then ``os.replace``), so an editor, git or ``yibao check`` never sees half a file.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ERROR, PolicyError, render
from yibao.core.errors import YibaoError

SAMPLE_CLAIMS = 5_000  # the studio's default sample: settles in well under a second
WORKING, COMMITTED = "working copy", "last commit"


class StudioError(YibaoError):
    """Something the studio cannot do, said in one sentence for the page."""


def could_not_run() -> tuple:
    """What the page reports as a message rather than a traceback: the studio's own refusals
    and every error the CLI reports as "could not run" (a bad path, a file that is not
    Parquet, claims or a policy yibao refuses: every YibaoError, StudioError included)."""
    from ..cli import expected_errors
    return (YibaoError, *expected_errors())


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` (UTF-8) in one step: write a temporary file beside it,
    flush it to disk, then rename it over the old file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def offset_of(text: str, line: int, col: int) -> int:
    """The string offset of 1-based (line, col) in ``text``, clamped to the text."""
    lines = text.split("\n")
    line = min(max(line, 1), len(lines))
    return sum(len(x) + 1 for x in lines[:line - 1]) + min(max(col - 1, 0), len(lines[line - 1]))


def diagnostic_view(diag, text: str) -> dict:
    """A compiler diagnostic as the page shows it: the fields plus ``yibao check``'s text."""
    s = diag.span
    return {"code": diag.code, "severity": diag.severity, "message": diag.message,
            "hint": diag.hint or "", "line": s.line if s else 0, "col": s.col if s else 0,
            "end_line": s.end_line if s else 0, "end_col": s.end_col if s else 0,
            "rendered": render(diag, text)}


def diagnostic_decorations(text: str, diagnostics: list) -> list:
    """A wavy underline under each diagnostic's span and a tinted line (CodeMirror specs)."""
    out = []
    for d in diagnostics:
        if not d["line"]:
            continue
        start = offset_of(text, d["line"], d["col"])
        end = offset_of(text, d["end_line"] or d["line"], d["end_col"] or d["col"] + 1)
        if end <= start:  # an empty span (end of file): underline one character if any
            start, end = max(0, min(start, len(text) - 1)), min(len(text), max(start, 0) + 1)
        kind = "error" if d["severity"] == ERROR else "warning"
        out.append({"kind": "line", "line": d["line"], "class": f"yb-{kind}-line"})
        if end > start:
            out.append({"kind": "mark", "from": start, "to": end, "class": f"yb-{kind}"})
    return out


# -- tables -----------------------------------------------------------------------------------


@dataclass
class CsvTable:
    """A table file as the grid edits it: the leading ``#`` comment lines kept verbatim, the
    header, and the rows as text."""
    comments: list
    header: list
    rows: list


def parse_csv(text: str) -> CsvTable:
    lines = text.splitlines(keepends=True)
    n = 0
    while n < len(lines) and lines[n].lstrip().startswith("#"):
        n += 1
    body = [r for r in csv.reader(io.StringIO("".join(lines[n:]))) if r]
    header = body[0] if body else []
    return CsvTable([x.rstrip("\r\n") for x in lines[:n]], header, body[1:])


def format_csv(table: CsvTable) -> str:
    out = io.StringIO()
    for line in table.comments:
        out.write(line + "\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows(table.rows)
    return out.getvalue()


# -- runs -------------------------------------------------------------------------------------


@dataclass
class Run:
    """One settled batch and what the page shows of it."""
    source: str  # "sample (5,000 claims, seed 7)" or the claims file
    claims: pa.Table
    results: pa.Table
    rejects: pa.Table
    plans: tuple
    summary: dict  # yibao demo's summarise(): counts and per-layer totals in fen
    pools: dict = field(default_factory=dict)  # runner.pool_totals: pool -> totals
    reasons: dict = field(default_factory=dict)  # reject reason -> count


def first_year(plans) -> int:
    """The calendar year of the first version's first day (the sample's discharge year)."""
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=plans[0].effective_from)).year


_SOURCE_REF = re.compile(r"\(([^()\s]+\.(?:yb|csv)):(\d+)\)")


def source_refs(line: str) -> list:
    """``(file, line)`` of every ``(policy.yb:27)`` reference in an explanation line."""
    return [(m.group(1), int(m.group(2))) for m in _SOURCE_REF.finditer(line)]


def _yuan(fen: int) -> str:
    """Fen as an exact yuan string for tests.yaml ("123.45"), sign kept."""
    sign, fen = ("-" if fen < 0 else ""), abs(int(fen))
    return f"{sign}{fen // 100}.{fen % 100:02d}"


# -- the folder -------------------------------------------------------------------------------


class Workspace:
    """A city folder: its policy versions (``*.yb``), tables (``*.csv``) and ``tests.yaml``."""

    def __init__(self, folder):
        self.given = Path(folder)  # as the user wrote it: diagnostics name files this way
        self.folder = self.given.resolve()
        if not self.folder.is_dir():
            raise StudioError(f"no folder {folder}")
        self._registry = None
        self.run: Run | None = None

    @property
    def registry(self):
        if self._registry is None:
            from ..commands._common import registry
            self._registry = registry()
        return self._registry

    # files

    def policy_files(self) -> list:
        return sorted(p.name for p in self.folder.glob("*.yb"))

    def table_files(self) -> list:
        return sorted(p.name for p in self.folder.glob("*.csv"))

    def path(self, name: str) -> Path:
        """A file directly inside the folder; anything else (``..``, ``/``) is refused."""
        path = (self.folder / name).resolve()
        if path.parent != self.folder or not name or name != path.name:
            raise StudioError(f"{name!r} is not a file of {self.folder}")
        return path

    def read(self, name: str) -> str:
        return self.path(name).read_text(encoding="utf-8")

    def save(self, name: str, text: str) -> None:
        atomic_write(self.path(name), text)

    def read_table(self, name: str) -> CsvTable:
        return parse_csv(self.read(name))

    def save_table(self, name: str, table: CsvTable) -> None:
        self.save(name, format_csv(table))

    # check

    def check(self, name: str, text: str) -> tuple:
        """(ok, diagnostics) of ``text`` as the policy file ``name``: what ``yibao check``
        prints for it, against the tables on disk."""
        from ..compiler import check_text
        path = self.path(name)
        plan, diagnostics = check_text(text, str(self.given / name), path.parent, self.registry)
        views = [diagnostic_view(d, text) for d in diagnostics]
        return plan is not None and not any(d.severity == ERROR for d in diagnostics), views

    # settle

    def plans(self, folder=None) -> tuple:
        """Every version of the folder (``compile_versions``); ``StudioError`` with the
        compiler's text when it does not compile."""
        from ..versions import compile_versions
        try:
            return compile_versions(folder or self.given, self.registry).versions
        except PolicyError as exc:
            raise StudioError(str(exc)) from None

    def sample(self, plans, n: int = SAMPLE_CLAIMS, seed: int = 7) -> pa.Table:
        """``yibao demo``'s sample claims, discharged in the policy's first year."""
        from yibao.core.generate import sample_claims
        return sample_claims(n, seed=seed, start_year=first_year(plans))

    def settle(self, claims_file: str = "", n: int = SAMPLE_CLAIMS, progress=None) -> Run:
        """Settle the sample (or a claims file) under the folder's versions, like
        ``yibao demo``; ``progress(fraction, words)`` is told each stage."""
        step = progress or (lambda fraction, words: None)
        step(0.05, "编译 compiling")
        plans = self.plans()
        step(0.2, "读取 reading claims")
        if claims_file:
            from ..commands._common import read_claims
            claims, source = read_claims(claims_file), claims_file
        else:
            claims, source = self.sample(plans, n), f"sample ({n:,} claims, seed 7)"
        step(0.4, f"结算 settling {claims.num_rows:,}")
        start = time.perf_counter()
        from yibao.core.engine import settle
        batch = settle(plans, claims, self.registry)
        elapsed = time.perf_counter() - start
        step(0.85, "汇总 summarising")
        self.run = self._summarise(source, plans, claims, batch, elapsed)
        step(1.0, "完成 done")
        return self.run

    def _summarise(self, source, plans, claims, batch, elapsed) -> Run:
        from ..commands.summary import summarise
        summary = summarise(plans[-1], claims, batch, elapsed)
        reasons = {}
        for reason in batch.rejects.column("reason").to_pylist():
            reasons[reason] = reasons.get(reason, 0) + 1
        return Run(source, claims, batch.results, batch.rejects, tuple(plans), summary,
                   self._pools(plans, claims, batch.results), reasons)

    @staticmethod
    def _pools(plans, claims, results) -> dict:
        """The provider year's per-pool totals (``yibao settle``'s summary.json ``pools``),
        for a single version with provider payment; {} otherwise."""
        if len(plans) != 1 or plans[0].provider is None:
            return {}
        from yibao.core.provider import ProviderYear
        from yibao.core.runner import pool_totals
        year = ProviderYear(plans[0])
        year.add(claims, results)
        return pool_totals(*year.settle())

    def find_claims(self, query: str, limit: int = 50) -> list:
        """Result rows whose claim id or person id contains ``query`` (first ``limit``)."""
        run = self._need_run()
        query = query.strip()
        res = run.results.select(["claim_id"]).append_column(
            "person_id", self._person_ids(run))
        if query:
            mask = pc.or_(pc.match_substring(res.column("claim_id"), query),
                          pc.match_substring(res.column("person_id").cast(pa.string()), query))
            res = res.filter(mask)
        return res.slice(0, limit).to_pylist()

    @staticmethod
    def _person_ids(run: Run) -> pa.ChunkedArray:
        """The person of each result row, in result order."""
        ids = run.claims.select(["claim_id", "person_id"])
        joined = run.results.select(["claim_id"]).join(ids, "claim_id", join_type="left outer")
        order = pc.index_in(run.results.column("claim_id"), joined.column("claim_id"))
        return joined.column("person_id").take(order).cast(pa.string())

    def _need_run(self) -> Run:
        if self.run is None:
            raise StudioError("run the policy first (运行 Run)")
        return self.run

    # explain

    def explain(self, claim_id: str):
        """``yibao explain`` of one claim of the last run: (explanation, its text)."""
        from yibao.core.explain import ExplainError, explain_claim, format_explanation
        run = self._need_run()
        plan = self._version_for(run, claim_id)
        try:
            ex = explain_claim(plan, run.claims, claim_id, self.registry)
        except ExplainError as exc:
            raise StudioError(str(exc)) from None
        return ex, format_explanation(ex)

    @staticmethod
    def _version_for(run: Run, claim_id: str):
        """The version in force on the claim's discharge date (as ``yibao explain``)."""
        from yibao.core.settlement import discharge_days, version_index
        mine = run.claims.filter(pc.equal(run.claims.column("claim_id"), claim_id))
        if len(run.plans) == 1 or mine.num_rows == 0:
            return run.plans[0]
        return run.plans[max(int(version_index(run.plans, discharge_days(mine))[0]), 0)]

    # tests

    def tests_path(self) -> Path:
        return self.folder / "tests.yaml"

    def run_tests(self) -> tuple:
        """``yibao test``: (results per case, [(plan, coverage)])."""
        from yibao.core.policytest import CaseFileError, coverage, load_cases, run_case
        from yibao.core.engine import settle
        plans = self.plans()
        try:
            cases = load_cases(self.tests_path()) if self.tests_path().exists() else []
        except CaseFileError as exc:
            raise StudioError(str(exc)) from None
        settle_case = (lambda plan, table, r: settle(plans, table, r))
        results = [run_case(plans[0], c, self.registry, settle_case) for c in cases]
        return results, [(p, coverage(p, cases, self.registry)) for p in plans]

    def case_from_claim(self, claim_id: str) -> dict:
        """A tests.yaml case pinning what the policy pays now for one claim of the last run.

        The claim is settled with the person's earlier claims of the run (settlement order),
        since its deductible and caps depend on them; the expectation is what the engine gives
        for that case alone, so the new case passes today and fails when a change moves it."""
        from yibao.core.policytest import Case, claims_table
        from yibao.core.engine import settle
        run = self._need_run()
        records = self._case_claims(run, claim_id)
        plans = run.plans
        batch = settle(plans, claims_table(records, plans[0]), self.registry)
        got = {r["claim_id"]: r for r in batch.results.to_pylist()}.get(claim_id)
        if got is None:
            raise StudioError(f"claim {claim_id} is rejected on its own; not a test case")
        columns = [c for layer in plans[0].layers
                   for c in (layer.name, f"{layer.name}_deductible")] + ["self_pay"]
        expect = {c: _yuan(got[c]) for c in columns if got.get(c) is not None}
        return {"name": f"{claim_id} (studio, {datetime.date.today().isoformat()})",
                "claims": records, "expect": {claim_id: expect}}

    def _case_claims(self, run: Run, claim_id: str) -> list:
        """The claim and the earlier claims of its person and family (which share its
        accumulator keys), as tests.yaml records (money in yuan)."""
        order = run.results.column("claim_id").to_pylist()
        if claim_id not in order:
            raise StudioError(f"claim {claim_id} is not among the settled claims")
        claims = run.claims
        me = claims.filter(pc.equal(claims.column("claim_id"), claim_id)).to_pylist()[0]
        mates = pc.equal(claims.column("person_id"), me["person_id"])
        if me.get("family_id") is not None:  # family caps and deductibles share a key too
            mates = pc.or_kleene(mates, pc.equal(claims.column("family_id"), me["family_id"]))
        mine = claims.filter(mates).to_pylist()
        rank = {cid: i for i, cid in enumerate(order)}
        mine = [r for r in mine if rank.get(r["claim_id"], -1) <= rank[claim_id]
                and r["claim_id"] in rank]
        mine.sort(key=lambda r: rank[r["claim_id"]])
        return [self._record(r, run.plans[0]) for r in mine]

    @staticmethod
    def _record(row: dict, plan) -> dict:
        from yibao.core.plan import MONEY
        from yibao.core.policytest import STANDARD
        money = {"total", "in_scope", "self_first"} | {
            c.name for c in plan.columns if c.type.kind == MONEY}
        keep = set(STANDARD) | {c.name for c in plan.columns}
        out = {}
        for k, v in row.items():
            if k not in keep or v is None:
                continue
            if k in money:
                v = _yuan(v)
            elif isinstance(v, datetime.date):
                v = v.isoformat()
            out[k] = v
        return out

    def add_case(self, case: dict) -> None:
        """Append ``case`` to tests.yaml, keeping what is there (comments included)."""
        import yaml
        path = self.tests_path()
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        block = yaml.safe_dump([case], allow_unicode=True, sort_keys=False, width=100)
        sep = "" if not old or old.endswith("\n\n") else ("\n" if old.endswith("\n") else "\n\n")
        self.save("tests.yaml", old + sep + block)

    # compare

    def compare_choices(self) -> list:
        """What can be compared: the working copy, its last commit (in a git repository),
        and each policy file of the folder on its own."""
        out = [WORKING]
        if self._git_head() is not None:
            out.append(COMMITTED)
        files = self.policy_files()
        return out + (files if len(files) > 1 else [])

    def compare(self, a: str, b: str, n: int = SAMPLE_CLAIMS):
        """``yibao diff`` of two choices on the sample claims of A's first year. A single
        policy file of another period is applied to those claims over A's period (its rules,
        A's dates), since a version in force later would reject them all otherwise."""
        from yibao.core.diff import diff_policies
        plans_a, plans_b = self._choice(a), self._choice(b)
        if len(plans_b) == 1 and plans_b[0].effective_from != plans_a[0].effective_from:
            plans_b = (dataclasses.replace(plans_b[0], effective_from=plans_a[0].effective_from,
                                           effective_to=plans_a[-1].effective_to),)
        return diff_policies(plans_a, plans_b, self.sample(plans_a, n), self.registry, top=10)

    def _choice(self, choice: str) -> tuple:
        if choice == WORKING:
            return self.plans()
        if choice == COMMITTED:
            return self._committed_plans()
        from ..compiler import compile_file
        try:
            return (compile_file(self.path(choice), self.registry),)
        except PolicyError as exc:
            raise StudioError(str(exc)) from None

    def _git_head(self):
        """(repository root, folder relative to it) when the folder is tracked at HEAD."""
        try:
            top = subprocess.run(["git", "-C", str(self.folder), "rev-parse", "--show-toplevel"],
                                 capture_output=True, text=True, timeout=10)
            if top.returncode:
                return None
            root = Path(top.stdout.strip()).resolve()
            rel = self.folder.relative_to(root).as_posix()
            listed = subprocess.run(["git", "-C", str(root), "ls-tree", "--name-only", "HEAD",
                                     f"{rel}/" if rel != "." else "."],
                                    capture_output=True, text=True, timeout=10)
        except (OSError, ValueError, subprocess.SubprocessError):
            return None
        names = [Path(x).name for x in listed.stdout.split()] if not listed.returncode else []
        return (root, rel) if any(x.endswith(".yb") for x in names) else None

    def _committed_plans(self) -> tuple:
        """The folder's versions as of the last commit, compiled from a temporary copy of
        its committed *.yb and *.csv files (deleted right after; nothing in the folder moves)."""
        head = self._git_head()
        if head is None:
            raise StudioError("the folder is not in a git repository with a commit")
        root, rel = head
        prefix = "" if rel == "." else f"{rel}/"
        listed = subprocess.run(["git", "-C", str(root), "ls-tree", "--name-only", "HEAD",
                                 prefix or "."], capture_output=True, text=True, timeout=10)
        with tempfile.TemporaryDirectory(prefix="yibao-studio-") as tmp:
            for name in (Path(x).name for x in listed.stdout.split()):
                if name.endswith((".yb", ".csv")):
                    blob = subprocess.run(["git", "-C", str(root), "show",
                                           f"HEAD:{prefix}{name}"],
                                          capture_output=True, timeout=10, check=True).stdout
                    (Path(tmp) / name).write_bytes(blob)
            return self.plans(Path(tmp))
