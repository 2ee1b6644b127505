"""yibao.plugins: the hook surface (``hookspecs``), the manager factory (``manager``), yibao's
own features written as default plugins (``builtin``) and the plugins shipped with yibao
(``family`` 家庭共济, ``tcm`` 中医倾斜). Plugins depend on ``yibao.core``, never the reverse.
"""
