"""The libcst transformer behind the structural quick fixes (imported only when a fix is applied).

Targets are found by their original position (PositionProvider), shifted by the region's first
line, so one transformer can apply several fixes to the same class in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import libcst as cst
from libcst.metadata import PositionProvider
from torchbolt.catalog import HOOKS_BY_OWNER

from .model import Fix


def snippet_body(body: str) -> str:
    """A catalog snippet body with its ${n:default} placeholders replaced by their defaults."""
    body = re.sub(r"\$\{\d+:([^}]*)\}", r"\1", body)
    return re.sub(r"\$\{\d+\}|\$\d+", "", body)


def _stmt(code: str) -> cst.BaseStatement:
    return cst.parse_statement(code if code.endswith("\n") else code + "\n")


def _body_list(fn: cst.FunctionDef) -> list[cst.BaseStatement]:
    body = fn.body
    if isinstance(body, cst.IndentedBlock):
        return list(body.body)
    return [cst.SimpleStatementLine(body=[s for s in body.body if isinstance(s, cst.BaseSmallStatement)])]


def _with_body(fn: cst.FunctionDef, stmts: Sequence[cst.BaseStatement]) -> cst.FunctionDef:
    if isinstance(fn.body, cst.IndentedBlock):
        return fn.with_changes(body=fn.body.with_changes(body=list(stmts)))
    return fn.with_changes(body=cst.IndentedBlock(body=list(stmts)))


def _without_trailing_pass(stmts: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
    if len(stmts) == 1 and isinstance(stmts[0], cst.SimpleStatementLine) and all(
            isinstance(s, cst.Pass) for s in stmts[0].body):
        return []
    return stmts


class Fixer(cst.CSTTransformer):
    """Applies a list of `Fix` requests that all fall inside the parsed region."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, fixes: Sequence[Fix], line_offset: int) -> None:
        super().__init__()
        self.fixes = list(fixes)
        self.offset = line_offset
        self.applied: set[int] = set()
        self._class_stack: list[int] = []  # original class lines
        self._fn_stack: list[str] = []

    # ---- positions ----
    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line + self.offset

    def _span(self, node: cst.CSTNode) -> tuple[int, int, int, int]:
        pos = self.get_metadata(PositionProvider, node)
        return (pos.start.line + self.offset, pos.start.column, pos.end.line + self.offset, pos.end.column)

    def _matching(self, kind: str, **conds: Any) -> list[Fix]:
        out = []
        for fix in self.fixes:
            if fix.kind != kind:
                continue
            if all(_same(fix.data.get(k), v) for k, v in conds.items()):
                out.append(fix)
        return out

    # ---- scopes ----
    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self._class_stack.append(self._line(node.name))
        return True

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self._fn_stack.append(node.name.value)
        return True

    def _class_fixes(self, kinds: tuple[str, ...]) -> list[Fix]:
        if not self._class_stack:
            return []
        line = self._class_stack[-1]
        return [f for f in self.fixes if f.kind in kinds and f.data.get("class_line") == line]

    def _in_method(self, name: str) -> bool:
        """Directly inside method `name` of the current class (not in a nested def)."""
        return len(self._fn_stack) == 1 and self._fn_stack[0] == name

    # ---- functions ----
    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.BaseStatement:
        self._fn_stack.pop()
        line = self._line(original.name)
        for fix in self._matching("rename_def", line=line, old=original.name.value):
            updated = updated.with_changes(name=cst.Name(fix.data["new"]))
            self.applied.add(id(fix))
        for fix in self._matching("remove_param", line=line):
            params = [p for p in updated.params.params if p.name.value not in fix.data["params"]]
            if params:
                params[-1] = params[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            updated = updated.with_changes(params=updated.params.with_changes(params=params))
            self.applied.add(id(fix))
        for fix in self._matching("remove_decorator"):
            kept = [new for old, new in zip(original.decorators, updated.decorators, strict=True)
                    if self._span(old.decorator) != tuple(fix.data["span"])]
            if len(kept) != len(updated.decorators):
                first_lines = updated.decorators[0].leading_lines if updated.decorators else ()
                if kept:
                    kept[0] = kept[0].with_changes(leading_lines=first_lines)
                    updated = updated.with_changes(decorators=kept)
                else:
                    updated = updated.with_changes(decorators=[], leading_lines=[*updated.leading_lines,
                                                                                  *first_lines])
                self.applied.add(id(fix))
        if self._fn_stack:
            return updated
        for fix in self._class_fixes(("migrate_epoch_end",)):
            if original.name.value == fix.data["old"]:
                updated = self._migrated_epoch_end(updated, fix)
            elif original.name.value == fix.data["step"]:
                updated = self._collecting_step(updated, fix)
        return updated

    def _migrated_epoch_end(self, fn: cst.FunctionDef, fix: Fix) -> cst.FunctionDef:
        attr = fix.data["attr"]
        params = list(fn.params.params)
        outputs_name = params[1].name.value if len(params) > 1 else None
        kept = [p.with_changes(comma=cst.MaybeSentinel.DEFAULT) for p in params[:1]]
        new_params = fn.params.with_changes(params=kept)
        body = _body_list(fn)
        # take the epoch's list and start a fresh one first: the old list stays intact for the whole body
        # (clearing it at the end would empty what the body returned or stored), and a `return` anywhere
        # in the body cannot skip the reset
        head = [_stmt(f"{outputs_name} = self.{attr}")] if outputs_name else []
        head.append(_stmt(f"self.{attr} = []  # a fresh list for the next epoch"))
        # keep a docstring first
        if body and _is_docstring(body[0]):
            body = [body[0], *head, *body[1:]]
        else:
            body = [*head, *body]
        self.applied.add(id(fix))
        return _with_body(fn.with_changes(name=cst.Name(fix.data["new"]), params=new_params), body)

    def _collecting_step(self, fn: cst.FunctionDef, fix: Fix) -> cst.FunctionDef:
        attr = fix.data["attr"]
        return fn.visit(_CollectReturns(attr))  # type: ignore[return-value]

    # ---- classes ----
    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.BaseStatement:
        line = self._class_stack.pop()
        fixes = [f for f in self.fixes if f.data.get("class_line") == line]
        if not fixes:
            return updated
        body = list(updated.body.body) if isinstance(updated.body, cst.IndentedBlock) else []
        init_lines: list[str] = []
        for fix in fixes:
            if fix.kind == "add_configure_optimizers":
                hook = HOOKS_BY_OWNER["module"]["configure_optimizers"]
                code = f"def configure_optimizers(self):\n    {snippet_body(hook.body)}\n"
                new_fn = cst.parse_statement(code)
                assert isinstance(new_fn, cst.FunctionDef)
                body.append(new_fn.with_changes(leading_lines=[cst.EmptyLine(indent=False)]))
                self.applied.add(id(fix))
            elif fix.kind == "migrate_epoch_end":
                init_lines.append(f"self.{fix.data['attr']} = []")
            elif fix.kind in ("disable_automatic_optimization", "to_manual_optimization"):
                init_lines.append("self.automatic_optimization = False")
                self.applied.add(id(fix))
        if init_lines:
            body = _ensure_init(body, init_lines)
        return updated.with_changes(body=updated.body.with_changes(body=body))

    # ---- calls and statements ----
    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        span = self._span(original)
        for fix in self.fixes:
            if tuple(fix.data.get("span", ())) != span:
                continue
            if fix.kind == "drop_method_call" and isinstance(updated.func, cst.Attribute):
                self.applied.add(id(fix))
                return updated.func.value
            if fix.kind == "cuda_to_device" and isinstance(updated.func, cst.Attribute):
                self.applied.add(id(fix))
                return updated.with_changes(func=updated.func.with_changes(attr=cst.Name("to")),
                                            args=[cst.Arg(cst.parse_expression("self.device"))])
            if fix.kind in ("drop_keyword", "move_to_fit"):
                self.applied.add(id(fix))
                updated = _drop_keyword(updated, fix.data["keyword"])
        for fix in self.fixes:
            if fix.kind == "move_to_fit" and isinstance(updated.func, cst.Attribute) \
                    and updated.func.attr.value == "fit" and isinstance(updated.func.value, cst.Name) \
                    and updated.func.value.value == fix.data["var"] \
                    and not any(a.keyword and a.keyword.value == "ckpt_path" for a in updated.args):
                updated = _add_keyword(updated, "ckpt_path", fix.data["value"])
        if self._class_stack and self._fn_stack:
            for fix in self._class_fixes(("to_manual_optimization",)):
                if self._fn_stack[0] == fix.data["method"] and isinstance(updated.func, cst.Attribute) \
                        and updated.func.attr.value == "backward" and not (
                            isinstance(updated.func.value, cst.Name) and updated.func.value.value == "self"):
                    args = [cst.Arg(updated.func.value), *updated.args]
                    fixed_args = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in args]
                    return updated.with_changes(func=cst.parse_expression("self.manual_backward"), args=fixed_args)
        return updated

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
                                  ) -> cst.BaseStatement | cst.RemovalSentinel:
        if len(original.body) != 1 or not isinstance(original.body[0], cst.Expr):
            return updated
        value = original.body[0].value
        if not isinstance(value, cst.Call):
            return updated
        span = self._span(value)
        for fix in self._matching("remove_statement"):
            if tuple(fix.data["span"]) == span:
                self.applied.add(id(fix))
                return cst.RemoveFromParent()
        return updated

    def leave_With(self, original: cst.With, updated: cst.With
                   ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        if len(original.items) != 1 or not isinstance(updated.body, cst.IndentedBlock):
            return updated
        span = self._span(original.items[0].item)
        for fix in self._matching("unwrap_with"):
            if tuple(fix.data["span"]) == span and original.items[0].asname is None:
                self.applied.add(id(fix))
                body = list(updated.body.body)
                first = body[0] if body else None
                if isinstance(first, cst.SimpleStatementLine | cst.BaseCompoundStatement):
                    body[0] = first.with_changes(leading_lines=[*updated.leading_lines, *first.leading_lines])
                return cst.FlattenSentinel(body)
        return updated

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        if not updated.body:
            return updated.with_changes(body=[_stmt("pass")])
        return updated


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return tuple(a) == tuple(b)
    return bool(a == b)


def _is_docstring(stmt: cst.BaseStatement) -> bool:
    return bool(isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(
        stmt.body[0], cst.Expr) and isinstance(stmt.body[0].value, cst.SimpleString | cst.ConcatenatedString))


def _ensure_init(body: list[cst.BaseStatement], lines: list[str]) -> list[cst.BaseStatement]:
    """Append `lines` to __init__ (skipping ones already there), creating __init__ when missing."""
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "__init__":
            existing = _body_list(stmt)
            have = {cst.Module(body=[]).code_for_node(s).strip() for s in existing}
            todo = [ln for ln in dict.fromkeys(lines) if ln not in have]
            body[i] = _with_body(stmt, [*existing, *(_stmt(ln) for ln in todo)])
            return body
    code = "def __init__(self, *args, **kwargs):\n    super().__init__(*args, **kwargs)\n" + "".join(
        f"    {ln}\n" for ln in dict.fromkeys(lines))
    init = cst.parse_statement(code)
    at = 1 if body and _is_docstring(body[0]) else 0
    body.insert(at, init.with_changes(leading_lines=[cst.EmptyLine(indent=False)]) if at else init)
    return body


def _drop_keyword(call: cst.Call, keyword: str) -> cst.Call:
    args = list(call.args)
    idx = next((i for i, a in enumerate(args) if a.keyword is not None and a.keyword.value == keyword), None)
    if idx is None:
        return call
    removed = args.pop(idx)
    if idx == len(args) and args:
        # the removed one was last: the new last argument takes over its trailing comma (or none)
        args[-1] = args[-1].with_changes(comma=removed.comma)
    return call.with_changes(args=args)


def _add_keyword(call: cst.Call, keyword: str, value_src: str) -> cst.Call:
    args = list(call.args)
    new = cst.Arg(keyword=cst.Name(keyword), value=cst.parse_expression(value_src),
                  equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                        whitespace_after=cst.SimpleWhitespace("")))
    if args:
        last = args[-1]
        trailing = last.comma
        args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        new = new.with_changes(comma=trailing if isinstance(trailing, cst.Comma) else cst.MaybeSentinel.DEFAULT)
    args.append(new)
    return call.with_changes(args=args)


class _CollectReturns(cst.CSTTransformer):
    """In a step method, append each returned value to `self.<attr>` before returning it."""

    def __init__(self, attr: str) -> None:
        super().__init__()
        self.attr = attr
        self.depth = 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.depth += 1
        return self.depth == 1  # do not descend into nested functions

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        self.depth -= 1
        return updated

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
                                  ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        if len(updated.body) != 1 or not isinstance(updated.body[0], cst.Return) or updated.body[0].value is None:
            return updated
        value = updated.body[0].value
        if isinstance(value, cst.Name):
            append = _stmt(f"self.{self.attr}.append({value.value})").with_changes(
                leading_lines=updated.leading_lines)
            return cst.FlattenSentinel([append, updated.with_changes(leading_lines=[])])
        value_code = cst.Module(body=[]).code_for_node(value)
        assign = _stmt(f"step_output = {value_code}").with_changes(leading_lines=updated.leading_lines)
        append = _stmt(f"self.{self.attr}.append(step_output)")
        ret = updated.with_changes(body=[updated.body[0].with_changes(value=cst.Name("step_output"))],
                                   leading_lines=[])
        return cst.FlattenSentinel([assign, append, ret])
