"""`yibao plugins`: the loaded plugins (name, version, hooks) and what each contributes; the
entry points the allowlist (YIBAO_PLUGINS_ALLOW or --allow) kept out are listed too."""
from __future__ import annotations

import sys

NAME = "plugins"
HELP = "list the loaded plugins, their versions, hooks and contributions"


def add_arguments(parser):
    parser.add_argument("--allow", default=None,
                        help="comma-separated allowlist of entry-point plugins "
                             "(default: env YIBAO_PLUGINS_ALLOW, else all)")


def _contributions(registry) -> dict:
    """plugin name -> ["function tcm_share", "key family", …]."""
    out: dict = {}
    kinds = (("function", registry.functions.values()), ("key", registry.keys.values()),
             ("validator", registry.validators), ("stage", registry.stages),
             ("grouper", registry.groupers.values()), ("adjustment", registry.adjustments.values()))
    for kind, decls in kinds:
        for decl in decls:
            out.setdefault(decl.plugin, []).append(f"{kind} {decl.name}")
    return out


def run(args) -> int:
    from yibao.plugins.manager import PluginError, build_registry, make_plugin_manager, plugin_info
    try:
        pm = make_plugin_manager(allowlist=args.allow)
        registry = build_registry(pm)
    except PluginError as exc:
        print(f"yibao plugins: {exc}", file=sys.stderr)
        return 2
    made = _contributions(registry)
    for name, version, hooks in plugin_info(pm):
        print(f"{name} {version}")
        print(f"  hooks: {', '.join(hooks) or '(none)'}")
        print(f"  adds:  {', '.join(made.get(name, [])) or '(nothing)'}")
    for name, reason in pm.skipped:
        print(f"{name} (not loaded: {reason})")
    return 0
