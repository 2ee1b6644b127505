"""Names that look like other names: mixed alphabets and look-alike letters.

A policy is read by people who compare names by eye: ``basic`` with a Cyrillic ``а`` (U+0430)
is a different layer from ``basic`` though no one can see it. Two rules, no dependency:

- ``name_problem``: a name may use one alphabet (Latin, Cyrillic, Greek, …), optionally with
  Chinese/Japanese/Korean characters, digits and ``_``; and no compatibility forms (full-width
  ``ａ``, ligatures, styled letters: NFKC would change them).
- ``skeleton``: a name with the common Cyrillic and Greek look-alikes of Latin letters mapped to
  those letters; two different names of one skeleton look the same (E207).
"""
from __future__ import annotations

import unicodedata
from typing import Optional

# Scripts that mix with any alphabet in real identifiers (``tier1_住院``).
_IDEOGRAPHIC = {"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "IDEOGRAPHIC"}

# Cyrillic and Greek letters drawn like Latin ones (Unicode confusables, the common subset).
_LOOK_ALIKE = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j",
    "ѕ": "s", "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ɡ": "g",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S", "У": "Y",
    "α": "a", "ο": "o", "ν": "v", "ρ": "p", "ι": "i", "κ": "k", "υ": "u", "τ": "t",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
})


def script(ch: str) -> Optional[str]:
    """The alphabet of a letter from its Unicode name ('LATIN', 'CYRILLIC', 'CJK' …), or
    None for a digit, '_' or a character without a name."""
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    return name.split(" ")[0] if name else None


def name_problem(name: str) -> Optional[tuple]:
    """(message, hint) when ``name`` mixes alphabets or uses compatibility forms, else None."""
    normal = unicodedata.normalize("NFKC", name)
    if normal != name:
        return (f"name '{name}' uses full-width or styled characters",
                f"write '{normal}'")
    by_script = {}
    for ch in name:
        s = script(ch)
        if s is not None and s not in _IDEOGRAPHIC:
            by_script.setdefault(s, ch)
    if len(by_script) <= 1:
        return None
    main = "LATIN" if "LATIN" in by_script else sorted(by_script)[0]
    odd = [(s, ch) for s, ch in by_script.items() if s != main]
    s, ch = odd[0]
    plain = name.translate(_LOOK_ALIKE)
    hint = (f"did you mean '{plain}'?" if script_set(plain) == {main}
            else "write the name in one alphabet")
    return (f"name '{name}' mixes {main.title()} and {s.title()} letters "
            f"('{ch}' is U+{ord(ch):04X} {unicodedata.name(ch, '?')})", hint)


def script_set(name: str) -> set:
    return {s for s in map(script, name) if s is not None and s not in _IDEOGRAPHIC}


def skeleton(name: str) -> str:
    """``name`` with look-alike letters mapped to the Latin ones they resemble."""
    return unicodedata.normalize("NFKC", name).translate(_LOOK_ALIKE)
