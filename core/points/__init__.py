"""Provider payment by points (点数法): the plan nodes (``plan``), the vectorised evaluator
(``compute``) and a plain-Python oracle of the same semantics (``reference``).

Normative semantics: docs/spec point-method.md §2–§4."""
