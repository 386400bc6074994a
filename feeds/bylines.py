"""Bylines as data: a source's author field or the first and last lines of its text -> the reporters named.

Korean newsrooms write bylines in many shapes: `홍길동 기자`, `홍길동·김철수 기자` (one role for both),
`김진호 국제전문기자` (a desk before the role), `워싱턴 | 박영환 특파원` (a dateline), `[서울=뉴시스] 박진희 기자 =`
(an agency's lead), `홍길동 기자 hong@example.com` (the last line), `논설위원 홍길동` (a column). `parse_byline` reads
each into `Reporter(name, role, desk)`; datelines, agencies, papers, e-mail addresses and URLs are dropped, and text
that only looks like a byline (`기자회견`, `편집국`, `온라인뉴스팀`) gives nothing. `byline_text` writes the reporters
back for readers, with their roles: `홍길동·김철수 기자`, `김진호 국제전문기자`. `byline_in_text` finds the byline a
feed without author elements carries in its text.

Pure functions; the tests hold a table of more than 60 shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Longest first: "전문기자" before "기자". A role may carry a desk in front of it, written together ("국제전문기자").
KOREAN_ROLES = ("선임기자", "수석기자", "전문기자", "객원기자", "인턴기자", "수습기자", "사진기자", "영상기자", "취재기자",
                "대기자", "기자", "특파원", "논설위원", "논설실장", "편집위원", "편집국장", "통신원", "앵커", "에디터",
                "칼럼니스트", "부장", "차장", "팀장", "국장")
ENGLISH_ROLES = ("staff writer", "senior reporter", "reporter", "correspondent", "columnist", "editor",
                 "photographer")
DESKS = ("정치", "경제", "사회", "국제", "문화", "사법", "법조", "산업", "금융", "증권", "부동산", "과학", "의학", "의료",
         "환경", "노동", "교육", "스포츠", "연예", "IT", "테크", "기획", "탐사", "디지털", "여론", "국방", "외교", "통일",
         "전국", "지역", "사진", "영상")
_ROLE = re.compile(rf"^(?P<prefix>.*?)(?P<role>{'|'.join(KOREAN_ROLES)})$")
_ENGLISH_ROLE = re.compile(rf"^(?:{'|'.join(ENGLISH_ROLES)})$", re.IGNORECASE)
_KOREAN_NAME = re.compile(r"^[가-힣]{2,4}$")
_WESTERN_NAME = re.compile(r"^[A-Z][a-zA-Z'.-]*(?: [A-Z][a-zA-Z'.-]*){1,3}$")
# What a Korean "name" that is really an organisation or a place ends with.
_NOT_A_PERSON = re.compile(r"(?:팀|부|국|실|일보|신문|뉴스|방송|미디어|닷컴|센터|위원회|협회|재단|그룹|기자단|편집국|통신|투고|"
                           r"회견|사설|칼럼|속보|단독|종합|특집|특별시|광역시)$")
_PLACES = frozenset("서울 부산 대구 인천 광주 대전 울산 세종 수원 창원 청주 전주 제주 춘천 포항 워싱턴 뉴욕 베이징 도쿄 "
                    "파리 런던 베를린 모스크바 홍콩 상하이 타이베이 하노이 방콕 싱가포르 뉴델리 두바이 브뤼셀 제네바 "
                    "LA 로스앤젤레스 실리콘밸리 평양 오사카 시드니 토론토 멕시코시티 상파울루 카이로 예루살렘".split())
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_AGENCY = re.compile(r"[\[(（【][^\])）】=]{1,20}=[^\])）】]{1,20}[\])）】]")  # [서울=뉴시스], (워싱턴=연합뉴스)
_DATELINE = re.compile(r"(?:^|(?<=[\s·,/]))([가-힣A-Za-z]{2,12})\s*[|│]\s*")  # 워싱턴 | 박영환
_CREDIT = re.compile(r"^(?:by\s+|(?:글|사진|영상|그래픽|취재|정리)(?:\s*[·/,]\s*(?:글|사진|영상|그래픽|취재|정리))*"
                     r"\s*[:=]\s*|(?:글|사진|영상|그래픽|취재|정리)(?:\s*[·/,]\s*(?:글|사진|영상|그래픽|취재|정리))+\s+)",
                     re.IGNORECASE)
_SEPARATORS = re.compile(r"\s*(?:[,·/&;|│、ㆍ]|\s및\s|\sand\s)\s*", re.IGNORECASE)
# In the text: the agency lead "[서울=뉴시스] 박진희 기자 = 본문", the last line "홍길동 기자 hong@example.com".
_LEAD = re.compile(rf"\A\s*(?P<agency>{_AGENCY.pattern}\s*)?(?P<byline>[^=\n\[\]]{{2,40}}?)\s*=\s*")
_ROLE_AT_END = re.compile(rf"(?:{'|'.join(KOREAN_ROLES)})$")
_TAIL = re.compile(rf"(?:^|[\s.。])(?P<byline>(?:[가-힣]{{2,4}}\s*[·,]\s*)*[가-힣]{{2,4}}\s*"
                   rf"(?:[가-힣]{{0,4}}(?:{'|'.join(KOREAN_ROLES)})))\s*\(?\s*{_EMAIL.pattern}\s*\)?\s*$")


@dataclass(frozen=True)
class Reporter:
    name: str
    role: str | None = None  # 기자, 특파원, 논설위원, 전문기자, …, or an English role
    desk: str | None = None  # 국제, 사법, 경제, 정치부, …

    @property
    def title(self) -> str:
        """The role as a reader sees it after the name: "국제전문기자", "정치부 기자", "특파원"."""
        if not self.role:
            return ""
        if not self.desk:
            return self.role
        return f"{self.desk} {self.role}" if self.desk.endswith("부") or self.desk.isascii() else self.desk + self.role


def parse_byline(text: str | None) -> tuple[Reporter, ...]:
    """The reporters a byline names, in order, each once; () when it names nobody."""
    return _parse_byline(text) if text else ()


@lru_cache(maxsize=8192)  # a paper has a few hundred reporters: most bylines have been read before
def _parse_byline(text: str) -> tuple[Reporter, ...]:
    text = _URL.sub(" ", _EMAIL.sub(" ", re.sub(r"<[^>]*>", " ", text)))
    text = _AGENCY.sub(" ", text)
    text = re.sub(r"[\[\]()<>{}【】（）\"“”]", " ", text)
    text = text.strip().rstrip("=").strip()
    if "=" in text:
        text = text.rsplit("=", 1)[-1]  # "한빛일보=홍길동 기자", "편집국 = 홍길동 기자"
    text = _DATELINE.sub(lambda m: "" if _is_dateline(m[1], text) else m[0], text)
    text = _CREDIT.sub("", " ".join(text.split()))
    reporters: list[Reporter] = []
    waiting: list[int] = []  # reporters named without a role: a role that follows is theirs too ("홍길동·김철수 기자")
    for chunk in _SEPARATORS.split(text):
        found = _chunk(chunk.strip())
        if found is None:
            continue
        if isinstance(found, str):  # a role alone: "Jane Doe, Staff Writer"
            for i in waiting:
                reporters[i] = Reporter(reporters[i].name, found, reporters[i].desk)
            waiting = []
            continue
        if found.name in [r.name for r in reporters]:
            continue
        reporters.append(found)
        if found.role is None:
            waiting.append(len(reporters) - 1)
        else:
            for i in waiting:
                reporters[i] = Reporter(reporters[i].name, found.role, found.desk)
            waiting = []
    return tuple(reporters)


def _is_dateline(word: str, whole: str) -> bool:
    """A word before "|" is a dateline when it is a known place, or when the byline is a correspondent's."""
    return word in _PLACES or "특파원" in whole or word.endswith(("시", "군", "도"))


def _chunk(chunk: str) -> Reporter | str | None:
    """One part of a byline: a reporter, a role alone, or nothing."""
    words = chunk.split()
    if not words:
        return None
    english = " ".join(words)
    if _ENGLISH_ROLE.match(english):
        return english.title()
    if len(words) >= 2 and _ENGLISH_ROLE.match(" ".join(words[-2:])) and _WESTERN_NAME.match(" ".join(words[:-2])):
        return Reporter(" ".join(words[:-2]), " ".join(words[-2:]).title())
    if len(words) >= 1 and _ENGLISH_ROLE.match(words[-1]) and _WESTERN_NAME.match(" ".join(words[:-1])):
        return Reporter(" ".join(words[:-1]), words[-1].title())
    if _WESTERN_NAME.match(english):
        return Reporter(english)
    role_at = next((i for i in range(len(words) - 1, -1, -1) if _ROLE.match(words[i])), None)
    if role_at is None:
        return Reporter(words[-1]) if len(words) == 1 and _is_name(words[0]) else None
    match = _ROLE.match(words[role_at])
    assert match is not None
    prefix, role = match["prefix"], match["role"]
    before = words[:role_at]
    if role_at == 0 and not prefix:  # "논설위원 홍길동": the role first
        rest = [w for w in words[1:] if _is_name(w)]
        return Reporter(rest[0], role) if len(words) >= 2 and rest else role
    desk: str | None = None
    if prefix:
        if prefix in DESKS or not before:
            if not before:  # "홍길동기자", or a desk and a role alone ("국제전문기자")
                if _is_name(prefix) and prefix not in DESKS:
                    return Reporter(prefix, role)
                return role
            desk = prefix
        else:
            desk = prefix  # "안호기 경제에디터": whatever stands before the role, in its word, is the desk
    if before and (before[-1] in DESKS or (before[-1].endswith("부") and len(before[-1]) <= 5)):
        desk = (before[-1] + " " + desk) if desk else before[-1]  # "홍길동 정치부 기자"
        before = before[:-1]
    names = [w for w in before if _is_name(w)]
    if not names:
        return role if not before else None
    name = before[-1] if _is_name(before[-1]) else names[-1]
    if before and before[0].endswith("부") and before[0] != name and desk is None:  # "정치부 홍길동 기자"
        desk = before[0]
    return Reporter(name, role, desk)


def _is_name(word: str) -> bool:
    return bool(_KOREAN_NAME.match(word)) and not _NOT_A_PERSON.search(word) and word not in _PLACES \
        and word not in DESKS and not _ROLE_AT_END.search(word)


def byline_text(reporters: tuple[Reporter, ...]) -> str | None:
    """The reporters as readers see them: names sharing a role joined ("홍길동·김철수 기자"), roles kept."""
    if not reporters:
        return None
    parts: list[str] = []
    i = 0
    while i < len(reporters):
        j = i
        while j + 1 < len(reporters) and (reporters[j + 1].role, reporters[j + 1].desk) == (reporters[i].role,
                                                                                           reporters[i].desk):
            j += 1
        group = reporters[i:j + 1]
        is_english = all(r.name.isascii() for r in group)
        names = (" and " if is_english else "·").join(r.name for r in group)
        title = group[0].title
        parts.append(names if not title else (f"{names}, {title}" if is_english else f"{names} {title}"))
        i = j + 1
    return ", ".join(parts)


def byline_in_text(text: str) -> tuple[tuple[Reporter, ...], str]:
    """The byline a text carries in its first or last line, and the text without it."""
    lead = _LEAD.match(text) if "=" in text[:80] else None
    # "[서울=뉴시스] 박진희 기자 =": after an agency's bracket anything that names a reporter; without one, only a
    # byline that ends in a role ("홍길동 기자 = …"), so that an ordinary sentence with "=" is left alone.
    if lead and (lead["agency"] or _ROLE_AT_END.search(lead["byline"].strip())) \
            and (found := parse_byline(lead["byline"])):
        return found, text[lead.end():].lstrip()
    cut = max(0, len(text) - 160)  # the last line only: the search stays cheap on a long body
    tail = _TAIL.search(text, cut) if "@" in text[cut:] else None
    if tail and (found := parse_byline(tail["byline"])):
        return found, text[:tail.start("byline")].rstrip()
    return (), text


def merge_bylines(declared: tuple[Reporter, ...], in_text: tuple[Reporter, ...]) -> tuple[Reporter, ...]:
    """The feed's author field wins; where the text names the same people, it may add their roles and desks."""
    if not declared:
        return in_text
    from_text = {r.name: r for r in in_text}
    return tuple(Reporter(r.name, r.role or getattr(from_text.get(r.name), "role", None),
                          r.desk or getattr(from_text.get(r.name), "desk", None)) for r in declared)
