"""yibao.core: the plan IR, the settlement kernel and the engine around it.

Nothing here imports ``yibao.dsl``: the back end runs plans, whatever wrote them.
"""
__version__ = "0.1.0"
