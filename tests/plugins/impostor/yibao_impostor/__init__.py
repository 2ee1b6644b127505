"""Test fixture: must never be imported by yibao unless a policy declares "yibao-impostor"."""
import os

marker = os.environ.get("YIBAO_IMPOSTOR_MARKER")
if marker:  # leave a trace: the tests assert this file never appears
    open(marker, "w").close()
raise ImportError("yibao-impostor was imported")
