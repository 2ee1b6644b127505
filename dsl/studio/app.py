"""The studio's page (NiceGUI): six tabs over one ``Workspace``.

Each tab is a small class that builds its part of the page and calls the workspace; the
page holds no settlement logic. Labels are bilingual (中文 first, the policies being Chinese).
Element ids (``.props('id=…')``) are the contract with the browser tests in tests/studio/.
"""
from __future__ import annotations

import html
import time

from nicegui import run, ui

from .highlight import CSS, highlight
from .workspace import (COMMITTED, WORKING, CsvTable, Workspace, could_not_run,
                        diagnostic_decorations, source_refs)

CHECK_DELAY = 0.3  # seconds of quiet typing before the policy is checked again


def _money(fen) -> str:
    from yibao.core.describe import format_money
    return format_money(int(fen))


def _notify_error(exc: Exception) -> None:
    ui.notify(str(exc).splitlines()[0][:300], type="negative", multi_line=True)


class EditTab:
    """The policy file in CodeMirror: highlighting, diagnostics as you type, atomic save."""

    def __init__(self, ws: Workspace, tabs):
        self.ws, self.tabs, self.tab = ws, tabs, None
        self.name = (ws.policy_files() or ["policy.yb"])[0]
        self.changed_at = None
        self.focus = None  # a line an explanation step pointed at
        with ui.row().classes("items-center gap-4"):
            if len(ws.policy_files()) > 1:
                ui.select(ws.policy_files(), value=self.name, label="版本 version",
                          on_change=lambda e: self.open(e.value)).props("id=policy-file").classes(
                    "w-56")
            self.status = ui.label().props("id=check-status")
            ui.button("保存 Save", on_click=self.save).props("id=save-policy no-caps")
            self.saved = ui.label().classes("text-grey-7").props("id=save-status")
        self.editor = ui.codemirror(self.ws.read(self.name), on_change=self._typed,
                                    keymap={"Mod-s": self.save}).classes("w-full h-[60vh]")
        self.editor.props("id=policy-editor")
        self.diagnostics = ui.column().classes("w-full gap-1").props("id=diagnostics")
        ui.timer(0.1, self._maybe_check)
        self.check()

    def open(self, name: str) -> None:
        self.name, self.focus = name, None
        self.editor.value = self.ws.read(name)
        self.check()

    def _typed(self, _event) -> None:
        self.changed_at = time.monotonic()

    def _maybe_check(self) -> None:
        if self.changed_at is not None and time.monotonic() - self.changed_at >= CHECK_DELAY:
            self.changed_at = None
            self.check()

    def check(self) -> None:
        """Compile the editor's text as ``yibao check`` would and show every diagnostic."""
        text = self.editor.value
        ok, diags = self.ws.check(self.name, text)
        errors = sum(d["severity"] == "error" for d in diags)
        self.status.text = ("✓ 编译通过 compiles" if ok else f"✗ {errors} 个错误 error(s)") + (
            f" · {len(diags) - errors} 个警告 warning(s)" if len(diags) > errors else "")
        self.status.classes(replace="text-positive" if ok else "text-negative")
        marks = highlight(text) + diagnostic_decorations(text, diags)
        if self.focus:
            marks.append({"kind": "line", "line": self.focus, "class": "yb-focus-line"})
        self.editor.decorations = marks
        self.editor.line_tooltips = {d["line"]: f"{d['code']}: {d['message']}"
                                     for d in diags if d["line"]}
        self._show(diags)

    def _show(self, diags) -> None:
        self.diagnostics.clear()
        with self.diagnostics:
            for d in diags:
                colour = "text-negative" if d["severity"] == "error" else "text-warning"
                ui.html(f"<pre class='{colour}' style='margin:0;white-space:pre-wrap'>"
                        f"{html.escape(d['rendered'])}</pre>").props(
                    f"data-code={d['code']} data-line={d['line']}").classes("yb-diagnostic")

    def save(self) -> None:
        self.ws.save(self.name, self.editor.value)
        self.saved.text = f"已保存 saved {time.strftime('%H:%M:%S')}"

    def goto(self, name: str, line: int) -> None:
        """Show ``name`` at ``line`` (a step of an explanation links here)."""
        if name != self.name and name in self.ws.policy_files():
            self.open(name)
        self.focus = line
        self.check()
        self.tabs.set_value("edit")
        self.editor.reveal_line(line)


class TablesTab:
    """The folder's CSV tables as editable grids, saved back as CSV (comments kept)."""

    def __init__(self, ws: Workspace, on_saved):
        self.ws, self.on_saved = ws, on_saved
        files = ws.table_files()
        if not files:
            ui.label("这个文件夹没有 CSV 表 · no CSV tables in this folder")
            return
        with ui.row().classes("items-center gap-4"):
            ui.select(files, value=files[0], label="表 table",
                      on_change=lambda e: self.open(e.value)).props("id=table-file").classes(
                "w-56")
            ui.button("加一行 Add row", on_click=self.add_row).props("id=table-add-row")
            ui.button("删除所选行 Delete selected", on_click=self.delete_rows)
            ui.button("保存 Save", on_click=self.save).props("id=save-table")
            self.saved = ui.label().classes("text-grey-7").props("id=table-status")
        self.grid = ui.aggrid({"columnDefs": [], "rowData": []}).classes("w-full h-[60vh]")
        self.grid.props("id=table-grid")
        self.grid.on("cellValueChanged", self._edited)
        self.open(files[0])

    def open(self, name: str) -> None:
        self.name, self.table = name, self.ws.read_table(name)
        self._render()

    def _render(self) -> None:
        cols = [{"headerName": h, "field": f"c{i}", "editable": True}
                for i, h in enumerate(self.table.header)]
        rows = [{"_row": n, **{f"c{i}": v for i, v in enumerate(r)}}
                for n, r in enumerate(self.table.rows)]
        # in place: the options also hold the grid's theme
        self.grid.options.update({"columnDefs": cols, "rowData": rows,
                                  "rowSelection": {"mode": "multiRow"},
                                  "stopEditingWhenCellsLoseFocus": True})
        self.grid.update()

    def _edited(self, e) -> None:
        data = e.args["data"]
        self.table.rows[data["_row"]] = [str(data.get(f"c{i}", "") or "")
                                         for i in range(len(self.table.header))]

    def add_row(self) -> None:
        self.table.rows.append([""] * len(self.table.header))
        self._render()

    async def delete_rows(self) -> None:
        chosen = {r["_row"] for r in await self.grid.get_selected_rows()}
        self.table.rows = [r for n, r in enumerate(self.table.rows) if n not in chosen]
        self._render()

    def save(self) -> None:
        self.ws.save_table(self.name, CsvTable(self.table.comments, self.table.header,
                                               [r for r in self.table.rows if any(r)]))
        self.saved.text = f"已保存 saved {self.name} {time.strftime('%H:%M:%S')}"
        self.on_saved()


class RunTab:
    """Settle the sample or a claims file; progress, per-layer and per-pool summary, charts."""

    def __init__(self, ws: Workspace, on_run):
        self.ws, self.on_run, self.stage = ws, on_run, (0.0, "")
        with ui.row().classes("items-end gap-4"):
            self.claims = ui.input("理赔文件 claims file (空 = 样本 sample)",
                                   placeholder="/path/to/claims.parquet").classes("w-96")
            self.n = ui.number("样本量 sample size", value=5000, min=1, max=200_000,
                               format="%d").classes("w-40")
            ui.button("运行 Run", on_click=self.go).props("id=run-button")
        self.bar = ui.linear_progress(value=0, show_value=False).classes("w-full")
        self.words = ui.label().props("id=run-stage")
        ui.timer(0.1, self._tick)
        self.out = ui.column().classes("w-full").props("id=run-summary")

    def _tick(self) -> None:
        self.bar.value, self.words.text = self.stage

    async def go(self) -> None:
        self.stage = (0.0, "开始 starting")
        path, n = (self.claims.value or "").strip(), int(self.n.value or 5000)
        try:
            result = await run.io_bound(self.ws.settle, path, n, self._progress)
        except could_not_run() as exc:
            self.stage = (0.0, "失败 failed")
            _notify_error(exc)
            return
        self._show(result)
        self.on_run()

    def _progress(self, fraction: float, words: str) -> None:
        self.stage = (fraction, words)  # read by the timer on the page's own loop

    def _show(self, r) -> None:
        s = r.summary
        self.out.clear()
        with self.out:
            ui.label(f"{s['policy']} · {r.source}: {s['settled']:,} 结算 settled, "
                     f"{s['rejected']:,} 拒绝 rejected, {s['seconds']:.2f}s").classes(
                "text-lg").props("id=run-headline")
            if r.reasons:
                ui.label("拒绝原因 rejected: " + ", ".join(f"{k} {v:,}"
                                                      for k, v in r.reasons.items()))
            names = list(s["layers"]) + ["self_pay"]
            labels = [s["labels"].get(n, "") or n for n in s["layers"]] + ["个人自付 self-pay"]
            fen = list(s["layers"].values()) + [s["self_pay"]]
            ui.echart(_bars("各层支付 paid per layer (元 yuan)", labels, fen)).classes(
                "w-full h-72").props("id=layer-chart")
            _table(["层 layer", "名称 label", "支付 paid (元)"],
                   [[n, lab, _money(v)] for n, lab, v in zip(names, labels, fen)], "layer-table")
            if r.pools:
                self._pools(r.pools)

    @staticmethod
    def _pools(pools: dict) -> None:
        ui.label("按点数法结算 provider payment per pool").classes("text-lg")
        ui.echart(_bars("统筹基金支付医院 fund pays hospitals (元 yuan)", list(pools),
                        [p["hifp_pay"] for p in pools.values()])).classes("w-full h-60")
        _table(["池 pool", "医院 hospitals", "病例 claims", "基金支付 hifp_pay (元)",
                "结算 setl_amt (元)"],
               [[name, p["hospitals"], p["claims"], _money(p["hifp_pay"]),
                 _money(p["setl_amt"])] for name, p in pools.items()], "pool-table")


def _bars(title: str, labels: list, fen: list) -> dict:
    """An ECharts bar chart of fen amounts shown in yuan (display only: values are rounded
    to the yuan for the bar length, the tables beside it carry the exact figures)."""
    return {"title": {"text": title, "textStyle": {"fontSize": 13}},
            "tooltip": {}, "grid": {"left": 90, "right": 20, "bottom": 60},
            "xAxis": {"type": "category", "data": labels, "axisLabel": {"interval": 0, "rotate": 20}},
            "yAxis": {"type": "value"},
            "series": [{"type": "bar", "data": [int(v) // 100 for v in fen]}]}


def _table(header: list, rows: list, ident: str = "") -> None:
    head = "".join(f"<th style='text-align:left;padding:2px 10px'>{html.escape(str(h))}</th>"
                   for h in header)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 10px'>{html.escape(str(c))}</td>"
                                    for c in row) + "</tr>" for row in rows)
    el = ui.html(f"<table><tr>{head}</tr>{body}</table>")
    if ident:
        el.props(f"id={ident}")


class ExplainTab:
    """Find a claim of the last run and show ``yibao explain``'s text, steps linked to lines."""

    def __init__(self, ws: Workspace, edit: EditTab):
        self.ws, self.edit, self.claim = ws, edit, None
        with ui.row().classes("items-end gap-4"):
            self.query = ui.input("理赔号或人员号 claim id or person",
                                  on_change=lambda e: self.search()).props("for=explain-search")
            self.case_button = ui.button("转为测试用例 Make test case",
                                         on_click=self.make_case).props("id=make-case")
        self.found = ui.row().classes("gap-1 flex-wrap").props("id=explain-matches")
        self.out = ui.column().classes("w-full gap-0 overflow-x-auto").props("id=explanation")

    def refresh(self) -> None:
        self.search()

    def search(self) -> None:
        self.found.clear()
        if self.ws.run is None:
            return
        with self.found:
            for row in self.ws.find_claims(self.query.value or "", limit=30):
                ui.button(f"{row['claim_id']} · {row['person_id']}",
                          on_click=lambda _e, cid=row["claim_id"]: self.show(cid)).props(
                    f"flat dense no-caps data-claim={row['claim_id']}").classes("yb-claim")

    def show(self, claim_id: str) -> None:
        try:
            _ex, text = self.ws.explain(claim_id)
        except could_not_run() as exc:
            _notify_error(exc)
            return
        self.claim = claim_id
        self.out.clear()
        with self.out:
            for line in text.splitlines():
                with ui.row().classes("gap-2 items-center no-wrap"):
                    ui.label(line or " ").classes("font-mono whitespace-pre text-sm")
                    for file, number in source_refs(line):
                        self._link(file, number)

    def _link(self, file: str, number: int) -> None:
        from pathlib import Path
        name = Path(file).name
        if name.endswith(".yb"):
            ui.link(f"→ {name}:{number}", "#").on(
                "click.prevent", lambda _e, n=name, k=number: self.edit.goto(n, k)).props(
                f"data-line={number}").classes("yb-step-link text-sm")

    def make_case(self) -> None:
        if self.claim is None:
            ui.notify("先选择一个理赔 pick a claim first", type="warning")
            return
        try:
            self.ws.add_case(self.ws.case_from_claim(self.claim))
        except could_not_run() as exc:
            _notify_error(exc)
            return
        ui.notify(f"已加入 tests.yaml · added {self.claim} to tests.yaml", type="positive")


class TestsTab:
    """``yibao test``: each case's PASS/FAIL with its mismatches, and the coverage."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        ui.button("运行测试 Run tests", on_click=self.go).props("id=run-tests")
        self.out = ui.column().classes("w-full gap-1").props("id=test-results")

    async def go(self) -> None:
        try:
            results, covered = await run.io_bound(self.ws.run_tests)
        except could_not_run() as exc:
            _notify_error(exc)
            return
        self.out.clear()
        failed = sum(not r.passed for r in results)
        with self.out:
            ui.label(f"{len(results) - failed} 通过 passed, {failed} 失败 failed").classes(
                "text-lg " + ("text-negative" if failed else "text-positive")).props(
                "id=test-verdict")
            for r in results:
                self._case(r)
            for plan, cov in covered:
                self._coverage(plan, cov, len(covered) > 1)

    @staticmethod
    def _case(r) -> None:
        mark = "✓ PASS" if r.passed else "✗ FAIL"
        ui.label(f"{mark} {r.case.name}").classes(
            "text-positive" if r.passed else "text-negative").props(
            f"data-passed={'yes' if r.passed else 'no'}").classes("yb-case")
        if r.error:
            ui.label(f"    无法运行 could not run: {r.error}").classes("font-mono text-sm")
        for m in r.mismatches:
            got = _money(m.actual) if isinstance(m.actual, int) else "nothing"
            ui.label(f"    {m.claim_id} {m.column} {m.label}: 预期 expected "
                     f"{_money(m.expected)}, 实际 got {got} {m.note}").classes(
                "font-mono text-sm")

    @staticmethod
    def _coverage(plan, cov, several) -> None:
        which = f" · {plan.name}" if several else ""
        if cov.complete:
            ui.label(f"覆盖 coverage{which}: 所有层、表行和分段都已覆盖 every layer, table row "
                     "and band exercised").props("id=test-coverage")
            return
        lines = ([f"层 layer {n} 从未适用 never applied" for n in cov.layers]
                 + [f"表 table {t} 行 row [{k}] 从未命中 never matched" for t, k in cov.rows]
                 + [f"层 layer {n} 分段 band {b} 从未进入 never entered" for n, b in cov.bands])
        with ui.expansion(f"覆盖 coverage{which}: {len(lines)} 项未覆盖 not exercised",
                          value=len(lines) <= 12).props("id=test-coverage").classes("w-full"):
            for line in lines:
                ui.label(line).classes("font-mono text-sm")


class CompareTab:
    """``yibao diff`` of two versions on the sample: figures, the diff report's charts."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        choices = ws.compare_choices()
        b = COMMITTED if COMMITTED in choices else choices[-1]
        with ui.row().classes("items-end gap-4"):
            self.a = ui.select(choices, value=b, label="A (原 before)").classes("w-56").props(
                "id=compare-a")
            self.b = ui.select(choices, value=WORKING, label="B (新 after)").classes("w-56").props(
                "id=compare-b")
            ui.button("比较 Compare", on_click=self.go).props("id=compare-button")
        self.out = ui.column().classes("w-full").props("id=compare-result")

    async def go(self) -> None:
        try:
            report = await run.io_bound(self.ws.compare, self.a.value, self.b.value)
        except could_not_run() as exc:
            _notify_error(exc)
            return
        from ..commands._diff_html import histogram_figure, pairs_figure
        from ..commands.diff import SECTIONS
        t = report.totals
        self.out.clear()
        with self.out:
            ui.label(f"{self.a.value} → {self.b.value}: {report.compared:,} 理赔比较 claims "
                     f"compared · 基金 fund {_money(t['fund_a'])} → {_money(t['fund_b'])} 元 "
                     f"({_money(t['fund_b'] - t['fund_a'])}) · 个人自付变化 self-pay changed "
                     f"for {report.changed:,} ({report.raised:,} up)").classes(
                "text-lg").props("id=compare-headline")
            for attr, title, keys in SECTIONS:
                table = getattr(report, attr)
                ui.label(title).classes("text-bold")
                ui.plotly(pairs_figure(report, attr)).classes("w-full")  # the diff report's charts
                _table([*keys, "A", "B", "change"], _figures(table, keys))
            ui.label("个人自付变化分布 change in self-pay (claims that changed)").classes(
                "text-bold")
            ui.plotly(histogram_figure(report)).classes("w-full")


def _figures(table, keys) -> list:
    """A diff section's rows: its keys, then A, B and the change in yuan."""
    return [[*(str(r[k]) for k in keys), _money(r["fund_a"]), _money(r["fund_b"]),
             ("+" if r["change"] > 0 else "") + _money(r["change"])] for r in table.to_pylist()]


def build_page(ws: Workspace) -> None:
    """The whole page for one browser tab."""
    ui.add_css(CSS)
    ui.page_title(f"yibao studio · {ws.folder.name}")
    with ui.header().classes("items-center"):
        shown = ws.folder if str(ws.given) == "." else ws.given
        ui.label(f"yibao studio 医保政策工作室 · {shown}").classes("text-lg")
    with ui.tabs().props("no-caps") as tabs:
        for key, label in (("edit", "编辑 Edit"), ("tables", "表格 Tables"), ("run", "运行 Run"),
                           ("explain", "解释 Explain"), ("tests", "测试 Tests"),
                           ("compare", "比较 Compare")):
            ui.tab(key, label).props(f"id=tab-{key}")
    with ui.tab_panels(tabs, value="edit", animated=False).classes("w-full"):
        with ui.tab_panel("edit"):
            edit = EditTab(ws, tabs)
        with ui.tab_panel("tables"):
            TablesTab(ws, on_saved=edit.check)
        with ui.tab_panel("tests"):
            TestsTab(ws)
        with ui.tab_panel("explain"):
            explain = ExplainTab(ws, edit)
        with ui.tab_panel("run"):
            RunTab(ws, on_run=explain.refresh)
        with ui.tab_panel("compare"):
            CompareTab(ws)


def serve(folder, port: int = 8765, open_browser: bool = True) -> None:
    """Serve the studio for ``folder`` on 127.0.0.1:``port`` until interrupted."""
    ws = Workspace(folder)

    @ui.page("/")
    def index():
        build_page(ws)

    print(f"yibao studio: {ws.folder} at http://127.0.0.1:{port}/ (Ctrl-C to stop)", flush=True)
    ui.run(host="127.0.0.1", port=port, title="yibao studio", reload=False, show=open_browser,
           show_welcome_message=False, language="zh-CN", favicon="🏥")
