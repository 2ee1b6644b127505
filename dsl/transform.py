"""Lark parse tree -> AST, and the input limits checked before parsing.

Nothing here recurses over the input: the limits are checked by a linear scan of the text,
the tree is converted by an explicit-stack post-order walk, and a tree deeper than
``MAX_TREE_DEPTH`` is refused (E004) so that the passes, which do recurse over expressions,
stay far below Python's recursion limit. Lark objects are used only through their public
attributes (``data``, ``children``, ``meta``; tokens are ``str`` with ``type``/``line``…), so
this module does not import Lark.
"""
from __future__ import annotations

import datetime
from typing import Callable

from . import ast
from .confusables import name_problem, skeleton
from .errors import PolicyError, error
from .units import ASCII_NUMBER, ascii_digits_hint

MAX_BYTES = 1_000_000
MAX_NESTING = 100
MAX_ITEMS = 10_000
MAX_TREE_DEPTH = 150



# -- limits ----------------------------------------------------------------------------------

def check_limits(text: str, filename: str) -> None:
    """Refuse input too big or too nested to compile safely: more than 1 MB, brackets nested
    deeper than 100, more than 10,000 statement lines or table rows."""
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        raise PolicyError([error("E001", f"policy file is {size:,} bytes; the limit is "
                                 f"{MAX_BYTES:,}", ast.Span(filename, 1, 1, 1, 2),
                                 "split the policy or move large tables to CSV files")], text)
    depth, lines, rows = 0, 0, 0
    for lineno, line in enumerate(text.splitlines(), 1):
        code = _code_part(line)
        if code.strip():
            lines += 1
        for col, ch in enumerate(code, 1):
            if ch in "([{":
                depth += 1
                if depth > MAX_NESTING:
                    span = ast.Span(filename, lineno, col, lineno, col + 1)
                    raise PolicyError([error("E002", f"brackets nested more than {MAX_NESTING} "
                                             "deep", span, "simplify the expression")], text)
            elif ch in ")]}":
                depth = max(0, depth - 1)
            elif ch == ":":
                rows += 1
        if lines > MAX_ITEMS or rows > MAX_ITEMS:
            span = ast.Span(filename, lineno, 1, lineno, 2)
            raise PolicyError([error("E003", f"more than {MAX_ITEMS:,} statements or table "
                                     "rows", span, "load large tables from a CSV file")], text)


def _code_part(line: str) -> str:
    """The line without its comment, with quoted text blanked."""
    out, quoted = [], False
    for ch in line:
        if ch == '"':
            quoted = not quoted
            out.append(ch)
        elif quoted:
            out.append(" ")
        elif ch == "#":
            break
        else:
            out.append(ch)
    return "".join(out)


def collect_comments(text: str, filename: str) -> tuple:
    """Every `#` comment, for the formatter."""
    found = []
    for lineno, line in enumerate(text.splitlines(), 1):
        code = _code_part(line)
        if len(code) < len(line):
            col = len(code) + 1
            found.append(ast.Comment(ast.Span(filename, lineno, col, lineno, len(line) + 1),
                                     line[len(code):].rstrip(), not code.strip()))
    return tuple(found)


# -- tree -> AST -----------------------------------------------------------------------------

def _is_tree(node) -> bool:
    return hasattr(node, "data") and hasattr(node, "children")


def to_ast(tree, filename: str, text: str, comments: tuple = ()) -> ast.PolicyFile:
    """Convert the parse tree; raises PolicyError for malformed literals and header errors."""
    _check_depth(tree, filename, text)
    builder = _Builder(filename)
    stack, values = [(tree, False)], []
    while stack:
        node, ready = stack.pop()
        if not _is_tree(node):
            values.append(node)
        elif ready:
            n = len(node.children)
            args = values[len(values) - n:]
            del values[len(values) - n:]
            values.append(builder.build(node.data, args, node.meta))
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.children))
    policy = values[0]
    policy = ast.PolicyFile(policy.span, policy.statements, comments)
    builder.check_header(policy)
    if builder.errors:
        raise PolicyError(builder.errors, text)
    return policy


def _check_depth(tree, filename: str, text: str) -> None:
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TREE_DEPTH:
            meta = node.meta
            span = ast.Span(filename, meta.line, meta.column, meta.end_line, meta.end_column)
            raise PolicyError([error("E004", f"expression nested more than {MAX_TREE_DEPTH} "
                                     "deep", span, "split it into smaller parts")], text)
        stack.extend((c, depth + 1) for c in node.children if _is_tree(c))


class _Builder:
    """One method per grammar rule (or alias); each gets the converted children."""

    def __init__(self, filename: str):
        self.file = filename
        self.errors = []
        self.spellings = {}  # skeleton -> (first spelling, its span): look-alike names

    def build(self, rule: str, args: list, meta):
        handler: Callable = getattr(self, "r_" + rule)
        return handler(args, self._span(meta))

    def _span(self, meta) -> ast.Span:
        if getattr(meta, "empty", True):
            return ast.Span(self.file, 1, 1, 1, 1)
        return ast.Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def tok_span(self, tok) -> ast.Span:
        return ast.Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column)

    def name(self, tok) -> ast.Name:
        node = ast.Name(self.tok_span(tok), str(tok))
        self.check_name(node)
        return node

    def check_name(self, node: ast.Name) -> None:
        """E105 for a name mixing alphabets or using look-alike forms (Cyrillic 'а' in a Latin
        name, full-width letters); E207 for a name that looks like an earlier one but is
        spelled with other characters. Chinese names are fine, alone or with Latin."""
        problem = name_problem(node.name)
        if problem is not None:
            self.errors.append(error("E105", problem[0], node.span, problem[1]))
            return
        key = skeleton(node.name)
        first = self.spellings.setdefault(key, (node.name, node.span))
        if first[0] != node.name:
            self.errors.append(error(
                "E207", f"name '{node.name}' looks like '{first[0]}' (line {first[1].line}) "
                "but is spelled with different characters", node.span,
                "letters from another alphabet look alike; retype one of them"))

    def number(self, tok, sign: str = "") -> str:
        """A NUMBER token (the grammar's \\d also matches full-width and other digits): E104
        unless it is ASCII digits."""
        text = sign + str(tok).replace("_", "")
        if not ASCII_NUMBER.fullmatch(text):
            self.errors.append(error("E104", f"'{tok}' is not written with ASCII digits",
                                     self.tok_span(tok), ascii_digits_hint(text)))
        return text

    @staticmethod
    def nodes(args) -> list:
        """Children without keyword and punctuation tokens."""
        return [a for a in args if not (isinstance(a, str) and hasattr(a, "type")
                                        and a.type not in ("NAME", "STRING", "NUMBER", "DATE",
                                                           "MONTHDAY"))]

    def check_header(self, policy: ast.PolicyFile) -> None:
        headers = [s for s in policy.statements if isinstance(s, ast.Header)]
        if not headers:
            self.errors.append(error("E110", "the policy has no header", ast.Span(
                self.file, 1, 1, 1, 2), 'start with: policy "name" { region "…"  effective '
                'YYYY-MM-DD to YYYY-MM-DD }'))
        for extra in headers[1:]:
            self.errors.append(error("E110", "a second policy header", extra.span,
                                     "a file holds one policy"))
        for header in headers[:1]:
            if header.effective is None:
                self.errors.append(error("E110", "the header has no effective dates",
                                         header.span, "add: effective YYYY-MM-DD to YYYY-MM-DD"))

    # -- file and header --
    def r_start(self, args, span):
        return ast.PolicyFile(span, tuple(args))

    def r_header(self, args, span):
        parts = {}
        for item in args[3:-1]:
            kind, value, item_span = item
            if kind in parts:
                self.errors.append(error("E110", f"'{kind.replace('_', ' ')}' given twice in "
                                         "the header", item_span))
            parts[kind] = value
        return ast.Header(span, _unquote(args[1]), parts.get("region"), parts.get("effective"),
                          parts.get("year_start"))

    def r_region(self, args, span):
        return ("region", _unquote(args[1]), span)

    def r_effective(self, args, span):
        start, end = self.date(args[1]), self.date(args[3])
        if start.value > end.value:
            self.errors.append(error("E110", "the policy ends before it starts", span))
        return ("effective", (start, end), span)

    def r_year_start(self, args, span):
        tok = args[2]
        try:
            datetime.date(2024, int(tok[:2]), int(tok[3:]))
        except ValueError:
            self.errors.append(error("E104", f"'{tok}' is not a month and day",
                                     self.tok_span(tok), "write MM-DD, e.g. 07-01"))
        return ("year_start", str(tok), span)

    def date(self, tok) -> ast.Date:
        try:
            datetime.date.fromisoformat(str(tok))
        except ValueError:
            self.errors.append(error("E104", f"'{tok}' is not a date", self.tok_span(tok),
                                     "write YYYY-MM-DD"))
        return ast.Date(self.tok_span(tok), str(tok))

    # -- declarations --
    def r_domain_decl(self, args, span):
        return ast.DomainDecl(span, self.name(args[1]), args[3])

    def r_word_list(self, args, span):
        return tuple(self.nodes(args))

    def r_name(self, args, span):
        return self.name(args[0])

    def r_string(self, args, span):
        return ast.Str(span, _unquote(args[0]))

    def r_true(self, args, span):
        return ast.Bool(span, True)

    def r_false(self, args, span):
        return ast.Bool(span, False)

    def r_date(self, args, span):
        return self.date(args[0])

    def r_number(self, args, span):
        return ast.Number(span, self.number(args[0]), args[1] if len(args) > 1 else None)

    def r_negative(self, args, span):
        unit = args[2] if len(args) > 2 else None
        return ast.Number(span, self.number(args[1], "-"), unit)

    def r_unit(self, args, span):
        return str(args[0])

    def r_attribute_decl(self, args, span):
        return ast.AttributeDecl(span, self.name(args[1]), args[3])

    def r_type_spec(self, args, span):
        domain = args[3] if len(args) > 1 else None
        return ast.TypeSpec(span, args[0], domain)

    def r_type_name(self, args, span):
        return str(args[0])

    def r_table_decl(self, args, span):
        name, keys, kind = self.name(args[1]), args[3], args[6]
        tspan = self.tok_span(args[5])
        value_type = ast.TypeSpec(ast.Span(self.file, tspan.line, tspan.end_col + 1, tspan.line,
                                           tspan.end_col + 1 + len(kind)), kind)
        if isinstance(args[-1], tuple):
            return ast.TableDecl(span, name, keys, value_type, args[-1])
        csv = ast.Str(self.tok_span(args[-1]), _unquote(args[-1]))
        return ast.TableDecl(span, name, keys, value_type, (), csv)

    def r_name_list(self, args, span):
        return tuple(self.name(t) for t in args if t.type == "NAME")

    def r_rows(self, args, span):
        return tuple(self.nodes(args))

    def r_row(self, args, span):
        return ast.Row(span, args[0], args[2])

    def r_key_list(self, args, span):
        return tuple(self.nodes(args))

    # -- layers --
    def r_layer_decl(self, args, span):
        rest = args[2:]
        label = None
        if getattr(rest[0], "type", None) == "STRING":
            label, rest = _unquote(rest[0]), rest[1:]
        return ast.LayerDecl(span, self.name(args[1]), label, tuple(self.nodes(rest)))

    def r_applies(self, args, span):
        return ast.Applies(span, args[2])

    def r_base(self, args, span):
        return ast.Base(span, args[1])

    def r_deductible(self, args, span):
        prefix = scope = continuing = amount = None
        alts = []
        for part in args[1:]:
            if part == "per_claim" and not hasattr(part, "type"):
                prefix = True
            elif isinstance(part, ast.Scope):
                scope = part
            elif isinstance(part, ast.Alt):
                alts.append(part)
            elif isinstance(part, tuple):
                continuing = part[1]
            else:
                amount = part
        return ast.Deductible(span, amount, scope, tuple(alts), continuing, bool(prefix))

    def r_per_claim(self, args, span):
        return "per_claim"

    def r_continuing(self, args, span):
        return ("continuing", args[2])

    def r_scope_claim(self, args, span):
        return ast.Scope(span, None)

    def r_scope_year(self, args, span):
        names = [self.name(a) for a in args if getattr(a, "type", None) == "NAME"]
        period = "month" if any(getattr(a, "type", None) == "MONTH" for a in args) else "year"
        return ast.Scope(span, names[0], tuple(names[1:]), period)

    def r_alt(self, args, span):
        return ast.Alt(span, args[1], args[3])

    def r_ratio(self, args, span):
        return ast.Ratio(span, args[1])

    def r_ratio_by(self, args, span):
        return ast.RatioBy(span, self.name(args[2]), args[3])

    def r_bands(self, args, span):
        return ast.Bands(span, self.name(args[2]),
                         tuple(a for a in args if isinstance(a, ast.BandRow)),
                         tuple(a for a in args if isinstance(a, ast.BandsWhen)))

    def r_band_when(self, args, span):
        return ast.BandsWhen(span, args[1], tuple(a for a in args if isinstance(a, ast.BandRow)))

    def r_band(self, args, span):
        return ast.BandRow(span, args[0], args[2], args[4])

    def r_band_above(self, args, span):
        return ast.BandRow(span, args[0], None, args[4])

    def r_cap(self, args, span):
        name = None
        rest = args[1:]
        if getattr(rest[0], "type", None) == "NAME":
            name, rest = self.name(rest[0]), rest[2:]
        return ast.Cap(span, name, rest[0], rest[1], tuple(rest[2:]))

    def r_cap_ref(self, args, span):
        return ast.CapRef(span, self.name(args[1]))

    def r_self_pay_limit(self, args, span):
        return ast.SelfPayLimit(span, args[1], args[2], tuple(args[3:]))

    def r_national(self, args, span):
        return ast.National(span, self.name(args[1]))

    # -- expressions --
    def r_if_else(self, args, span):
        return ast.IfElse(span, args[1], args[3], args[5])

    def r_binop(self, args, span):
        return ast.BinOp(span, str(args[1]), args[0], args[2])

    def r_unary(self, args, span):
        return ast.Unary(span, "not" if args[0].type == "NOT" else "-", args[1])

    def r_in_set(self, args, span):
        return ast.InSet(span, args[0], tuple(self.nodes(args[2:])))

    def r_lookup(self, args, span):
        return ast.Lookup(span, self.name(args[0]), tuple(self.nodes(args[1:])))

    def r_call(self, args, span):
        return ast.Call(span, self.name(args[0]), tuple(self.nodes(args[1:])))

    def r_paid(self, args, span):
        layers = args[2] if len(args) > 1 else ()
        return ast.Paid(span, layers)

    # -- provider payment --
    def _label_rest(self, rest):
        if rest and getattr(rest[0], "type", None) == "STRING":
            return _unquote(rest[0]), rest[1:]
        return None, rest

    def str_node(self, tok) -> ast.Str:
        return ast.Str(self.tok_span(tok), _unquote(tok))

    def r_grouper_decl(self, args, span):
        label, rest = self._label_rest(args[2:])
        return ast.GrouperDecl(span, self.name(args[1]), label, tuple(self.nodes(rest)))

    def r_plugin_decl(self, args, span):
        return ast.PluginUse(span, self.str_node(args[1]), self.str_node(args[2]))

    def r_grouper_table(self, args, span):
        label, rest = self._label_rest(args[2:])
        strings = [a for a in rest if getattr(a, "type", None) == "STRING"]
        default = self.str_node(strings[1]) if len(strings) > 1 else None
        return ast.GrouperDecl(span, self.name(args[1]), label, (), self.str_node(strings[0]),
                               default)

    def r_drg_tables(self, args, span):
        return ast.DrgTables(span, self.name(args[1]))

    def r_grouper_by(self, args, span):
        return ast.GrouperBy(span, self.name(args[1]))

    def r_mdc_order(self, args, span):
        return ast.MdcOrder(span, args[2])

    def r_drg_split(self, args, span):
        return ast.DrgSplit(span, args[4], self.str_node(args[2]))

    def r_pool_decl(self, args, span):
        label, rest = self._label_rest(args[2:])
        return ast.PoolDecl(span, self.name(args[1]), label, tuple(self.nodes(rest)))

    def r_alliance_decl(self, args, span):
        label, rest = self._label_rest(args[2:])
        return ast.AllianceDecl(span, self.name(args[1]), label, tuple(self.nodes(rest)))

    def r_alliance_residents(self, args, span):
        return ast.AllianceResidents(span, self.name(args[2]))

    def r_alliance_budget(self, args, span):
        return ast.AllianceBudget(span, args[1], self.str_node(args[5]))

    def r_alliance_pools(self, args, span):
        return ast.AlliancePools(span, tuple(args[2]))

    def r_group_by(self, args, span):
        return ast.GroupBy(span, self.name(args[2]))

    def r_group_by_sources(self, args, span):
        sources = tuple(a for a in args if isinstance(a, ast.GroupSourceRow))
        return ast.GroupBy(span, sources[0].grouper, sources)

    def r_group_source(self, args, span):
        return ast.GroupSourceRow(span, self.name(args[0]), args[2])

    def r_group_source_else(self, args, span):
        return ast.GroupSourceRow(span, self.name(args[0]), None)

    def r_fixed_point_value(self, args, span):
        return ast.FixedPointValue(span, self.str_node(args[4]))

    def r_budget(self, args, span):
        return ast.Budget(span, args[1])

    def r_budget_per_head(self, args, span):
        return ast.Budget(span, args[1], args[5])

    def r_budget_from(self, args, span):
        return ast.BudgetFrom(span, self.str_node(args[2]), args[5])

    def r_base_points(self, args, span):
        strings = [self.str_node(a) for a in args[3:] if getattr(a, "type", None) == "STRING"]
        return ast.BasePoints(span, strings[0], tuple(strings[1:]))

    def r_coefficients(self, args, span):
        return ast.Coefficients(span, self.name(args[2]), args[3])

    def r_coefficients_csv(self, args, span):
        return ast.Coefficients(span, self.name(args[2]), (), self.str_node(args[4]))

    def r_high_outlier(self, args, span):
        return ast.HighOutlier(span, tuple(a for a in args if isinstance(a, ast.HighBandRow)))

    def r_high_band(self, args, span):
        return ast.HighBandRow(span, args[0], args[4])

    def r_high_else(self, args, span):
        return ast.HighBandRow(span, args[0], None)

    def r_low_outlier(self, args, span):
        return ast.LowOutlier(span, args[2])

    def r_incomplete(self, args, span):
        return ast.Incomplete(span, self.name(args[2]))

    def r_bed_day(self, args, span):
        return ast.BedDay(span, self.str_node(args[4]))

    def r_day_tiers(self, args, span):
        return ast.DayTiers(span, tuple(a for a in args if isinstance(a, ast.BandRow)))

    def _days(self, tok):
        return ast.Number(self.tok_span(tok), self.number(tok))

    def r_readmission(self, args, span):
        return ast.Readmission(span, self._days(args[2]), None)

    def r_readmission_share(self, args, span):
        return ast.Readmission(span, self._days(args[2]), args[-1])

    def r_adjust(self, args, span):
        return ast.Adjust(span, self.name(args[1]), args[2], args[4])

    def r_adjustment_decl(self, args, span):
        params = tuple(a for a in args if isinstance(a, ast.AdjustParam))
        return ast.AdjustmentDecl(span, self.name(args[2]), params)

    def r_adjust_param(self, args, span):
        return ast.AdjustParam(span, self.name(args[0]), args[1])

    def r_adjust_param_csv(self, args, span):
        return ast.AdjustParam(span, self.name(args[0]), self.str_node(args[2]), csv=True)

    def r_pv_plus_paid(self, args, span):
        return ast.PointValueDecl(span, "budget_plus_paid")

    def r_pv_budget(self, args, span):
        return ast.PointValueDecl(span, "budget")

    def r_pv_baseline(self, args, span):
        return ast.PointValueDecl(span, "baseline", args[3], args[5])

    def r_reserve(self, args, span):
        return ast.Reserve(span, args[1])

    def r_sharing(self, args, span):
        control = args[8] if len(args) > 8 else (None, None)
        return ast.Sharing(span, args[2], args[6], *control)

    def r_control(self, args, span):
        return (args[1], args[5])

    def r_capitation(self, args, span):
        return ast.Capitation(span, args[1], self.str_node(args[6]))

    def r_prepayments(self, args, span):
        return ast.Prepayments(span, self.str_node(args[2]), args[4] if len(args) > 4 else None)

    def r_special_review(self, args, span):
        return ast.SpecialReview(span, self.str_node(args[3]))

    # -- fund supervision --

    def r_flag_decl(self, args, span):
        label, rest = self._label_rest(args[2:])
        return ast.FlagDecl(span, self.name(args[1]), label, tuple(self.nodes(rest)))

    def r_flag_readmit_same(self, args, span):
        return ast.FlagReadmit(span, self._days(args[2]), True)

    def r_flag_readmit_other(self, args, span):
        return ast.FlagReadmit(span, self._days(args[2]), False)

    def r_flag_mean(self, args, span):
        return ast.FlagAboveMean(span, str(args[0]), args[2])

    def r_flag_short(self, args, span):
        return ast.FlagShortStay(span, self._days(args[3]), args[8])

    def r_flag_groups(self, args, span):
        return ast.FlagGroups(span, tuple(self.nodes(args[3:])))

    def r_flag_cc(self, args, span):
        return ast.FlagCcShare(span, args[3], args[7] if len(args) > 7 else None)

    def r_flag_severe(self, args, span):
        return ast.FlagSevereShare(span, args[3], args[11], args[12] if len(args) > 12 else None)

    def r_min_cases(self, args, span):
        return self._days(args[3])

    def r_severity(self, args, span):
        return ast.Severity(span, self.name(args[1]))

    def r_effect(self, args, span):
        return ast.Effect(span, "review")

    def r_atom(self, args, span):  # ( expr )
        return args[1]


def _unquote(tok) -> str:
    return str(tok)[1:-1]
