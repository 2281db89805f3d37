"""Pinyin keys of a patient's name, so staff can find 张晓宇 by typing "zxy" or "zhangxiaoyu".

Plain functions (no models): the patients data migration calls them too.
"""

from __future__ import annotations

import re
import unicodedata

from pypinyin import Style, lazy_pinyin, pinyin

# A surname read several ways (单 dan/shan, 曾 ceng/zeng, 解 jie/xie): each reading is a key,
# capped so that a rare character's long list of readings does not match everything.
MAX_SURNAME_READINGS = 3
_NOT_LETTER = re.compile(r"[^a-z]+")


def _fold(text: str) -> str:
    """Lower case, tone marks dropped (ǎ → a), ü written v as pypinyin does (lǚ → lv)."""
    text = text.lower().replace("ü", "v").replace("ǖ", "v").replace("ǘ", "v")
    text = text.replace("ǚ", "v").replace("ǜ", "v")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _syllables(name: str) -> list[str]:
    """Each Chinese character's reading, and each other word as it is: 'zhang', 'xiao', 'yu'."""
    words: list[str] = []
    for chunk in lazy_pinyin(name, style=Style.NORMAL, errors="default"):
        words.extend(word for word in _NOT_LETTER.split(_fold(chunk)) if word)
    return words


def name_pinyin_keys(name: str) -> tuple[str, str]:
    """(full pinyin, initials), each a space-separated list of readings: the usual reading
    first, then the surname's other readings; e.g. 单田芳 → ('dantianfang chantianfang
    shantianfang', 'dtf ctf stf'). Empty strings for a name without letters."""
    name = (name or "").strip()
    syllables = _syllables(name)
    if not syllables:
        return "", ""
    variants = [syllables]
    first = name[0]
    if "\u4e00" <= first <= "\u9fff":
        readings = pinyin(first, style=Style.NORMAL, heteronym=True)[0][:MAX_SURNAME_READINGS]
        for reading in readings:
            variant = [_fold(reading), *syllables[1:]]
            if variant not in variants:
                variants.append(variant)
    full = list(dict.fromkeys("".join(variant) for variant in variants))
    initials = list(dict.fromkeys("".join(word[0] for word in variant) for variant in variants))
    return " ".join(full), " ".join(initials)


def pinyin_query(query: str) -> str:
    """A search typed in pinyin ('Zhang Xiaoyu', 'zhāng xiǎo yǔ', 'ZXY') as the stored keys
    spell it ('zhangxiaoyu', 'zxy'); '' when the query is not made of Latin letters alone."""
    folded = _fold((query or "").strip())
    if not folded or not re.fullmatch(r"[a-z\s'’·-]+", folded):
        return ""
    return _NOT_LETTER.sub("", folded)
