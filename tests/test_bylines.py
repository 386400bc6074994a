"""Bylines as data: the shapes Korean (and some English) newsrooms write, each read into reporters with their roles
and desks, and written back for readers. Every case is written for this project; no article text is copied."""

from __future__ import annotations

import pytest

from feeds.bylines import Reporter, byline_in_text, byline_text, merge_bylines, parse_byline

R = Reporter

CASES = [
    # one reporter, the role after the name
    ("role", "홍길동 기자", [R("홍길동", "기자")], "홍길동 기자"),
    ("role-attached", "홍길동기자", [R("홍길동", "기자")], "홍길동 기자"),
    ("senior", "홍길동 선임기자", [R("홍길동", "선임기자")], "홍길동 선임기자"),
    ("chief", "홍길동 수석기자", [R("홍길동", "수석기자")], "홍길동 수석기자"),
    ("intern", "이하늘 인턴기자", [R("이하늘", "인턴기자")], "이하늘 인턴기자"),
    ("guest", "박바다 객원기자", [R("박바다", "객원기자")], "박바다 객원기자"),
    ("trainee", "최구름 수습기자", [R("최구름", "수습기자")], "최구름 수습기자"),
    ("photo", "정별 사진기자", [R("정별", "사진기자")], "정별 사진기자"),
    ("video", "한솔 영상기자", [R("한솔", "영상기자")], "한솔 영상기자"),
    ("correspondent", "홍길동 특파원", [R("홍길동", "특파원")], "홍길동 특파원"),
    ("editorial-writer", "김태오 논설위원", [R("김태오", "논설위원")], "김태오 논설위원"),
    ("editorial-board", "이수린 편집위원", [R("이수린", "편집위원")], "이수린 편집위원"),
    ("columnist", "오민지 칼럼니스트", [R("오민지", "칼럼니스트")], "오민지 칼럼니스트"),
    ("anchor", "윤서아 앵커", [R("윤서아", "앵커")], "윤서아 앵커"),
    ("stringer", "장하람 통신원", [R("장하람", "통신원")], "장하람 통신원"),
    ("great-reporter", "백승호 대기자", [R("백승호", "대기자")], "백승호 대기자"),
    ("four-syllable-name", "남궁민수 기자", [R("남궁민수", "기자")], "남궁민수 기자"),
    ("two-syllable-name", "정별 기자", [R("정별", "기자")], "정별 기자"),
    # a desk before the role
    ("desk-specialist", "김진호 국제전문기자", [R("김진호", "전문기자", "국제")], "김진호 국제전문기자"),
    ("desk-specialist-law", "이범준 사법전문기자", [R("이범준", "전문기자", "사법")], "이범준 사법전문기자"),
    ("desk-editor", "안호기 경제에디터", [R("안호기", "에디터", "경제")], "안호기 경제에디터"),
    ("desk-word-before-role", "홍길동 정치부 기자", [R("홍길동", "기자", "정치부")], "홍길동 정치부 기자"),
    ("desk-word-before-name", "정치부 홍길동 기자", [R("홍길동", "기자", "정치부")], "홍길동 정치부 기자"),
    ("desk-head", "한도윤 사회부장", [R("한도윤", "부장", "사회")], "한도윤 사회부장"),
    ("specialist-with-email", "김진호 국제전문기자 jh@example.com", [R("김진호", "전문기자", "국제")],
     "김진호 국제전문기자"),
    # several reporters
    ("two-one-role", "홍길동·김철수 기자", [R("홍길동", "기자"), R("김철수", "기자")], "홍길동·김철수 기자"),
    ("three-one-role", "홍길동·김철수·이영희 기자", [R("홍길동", "기자"), R("김철수", "기자"), R("이영희", "기자")],
     "홍길동·김철수·이영희 기자"),
    ("two-roles", "홍길동 기자, 김철수 기자", [R("홍길동", "기자"), R("김철수", "기자")], "홍길동·김철수 기자"),
    ("two-different-roles", "홍길동 선임기자·김철수 기자", [R("홍길동", "선임기자"), R("김철수", "기자")],
     "홍길동 선임기자, 김철수 기자"),
    ("two-comma-one-role", "홍길동, 김철수 기자", [R("홍길동", "기자"), R("김철수", "기자")], "홍길동·김철수 기자"),
    ("two-and", "홍길동 및 김철수 기자", [R("홍길동", "기자"), R("김철수", "기자")], "홍길동·김철수 기자"),
    ("two-slash", "홍길동/김철수 기자", [R("홍길동", "기자"), R("김철수", "기자")], "홍길동·김철수 기자"),
    ("three-mixed", "홍길동 특파원, 김철수·이영희 기자",
     [R("홍길동", "특파원"), R("김철수", "기자"), R("이영희", "기자")], "홍길동 특파원, 김철수·이영희 기자"),
    ("duplicate-name", "홍길동 기자·홍길동 기자", [R("홍길동", "기자")], "홍길동 기자"),
    # datelines, agencies, papers
    ("datelines-two-correspondents", "워싱턴 | 박영환·베이징 | 박은경 특파원",
     [R("박영환", "특파원"), R("박은경", "특파원")], "박영환·박은경 특파원"),
    ("dateline-one", "도쿄 | 이하나 특파원", [R("이하나", "특파원")], "이하나 특파원"),
    ("agency-brackets", "[서울=뉴시스] 박진희 기자", [R("박진희", "기자")], "박진희 기자"),
    ("agency-brackets-trailing-equals", "[서울=뉴시스] 박진희 기자 =", [R("박진희", "기자")], "박진희 기자"),
    ("agency-parentheses", "(워싱턴=연합뉴스) 김한빛 특파원", [R("김한빛", "특파원")], "김한빛 특파원"),
    ("paper-and-name", "한빛일보 홍길동 기자", [R("홍길동", "기자")], "홍길동 기자"),
    ("paper-brackets", "[한빛일보 홍길동 기자]", [R("홍길동", "기자")], "홍길동 기자"),
    ("paper-equals", "한빛일보=홍길동 기자", [R("홍길동", "기자")], "홍길동 기자"),
    ("newsroom-equals", "편집국 = 홍길동 기자", [R("홍길동", "기자")], "홍길동 기자"),
    # what comes with the byline
    ("email", "홍길동 기자 hong@example.com", [R("홍길동", "기자")], "홍길동 기자"),
    ("email-in-parentheses", "홍길동 기자(hong@example.com)", [R("홍길동", "기자")], "홍길동 기자"),
    ("url", "홍길동 기자 https://news.example.com/reporter/12", [R("홍길동", "기자")], "홍길동 기자"),
    ("www-url", "홍길동 기자 www.example.com/hong", [R("홍길동", "기자")], "홍길동 기자"),
    ("credit-text-photo", "글·사진 홍길동 기자", [R("홍길동", "기자")], "홍길동 기자"),
    ("credit-photo-equals", "사진=홍길동 기자", [R("홍길동", "기자")], "홍길동 기자"),
    ("html", "<b>최은비</b> 특파원", [R("최은비", "특파원")], "최은비 특파원"),
    ("spaces", "  이서연  ", [R("이서연")], "이서연"),
    ("role-first", "논설위원 홍길동", [R("홍길동", "논설위원")], "홍길동 논설위원"),
    ("bare-name", "이서연", [R("이서연")], "이서연"),
    ("two-bare-names", "이서연·박지민", [R("이서연"), R("박지민")], "이서연·박지민"),
    # English
    ("english-by", "By Jane Doe", [R("Jane Doe")], "Jane Doe"),
    ("english-two", "By Jane Doe and John Roe", [R("Jane Doe"), R("John Roe")], "Jane Doe and John Roe"),
    ("english-role", "Jane Doe, Staff Writer", [R("Jane Doe", "Staff Writer")], "Jane Doe, Staff Writer"),
    ("english-correspondent", "John Roe Correspondent", [R("John Roe", "Correspondent")], "John Roe, Correspondent"),
    # only looks like a byline
    ("role-only", "기자", [], None),
    ("empty", "", [], None),
    ("press-conference", "기자회견", [], None),
    ("press-corps", "청와대 기자단", [], None),
    ("newsroom", "편집국", [], None),
    ("online-team", "온라인뉴스팀", [], None),
    ("desk-only", "디지털뉴스부", [], None),
    ("paper-only", "한빛일보", [], None),
    ("agency-only", "[서울=뉴시스]", [], None),
    ("email-only", "desk@example.com", [], None),
    ("editorial", "[사설]", [], None),
    ("sentence", "정부는 오늘 새 대책을 발표했다", [], None),
    ("place-only", "워싱턴", [], None),
    ("desk-and-role-only", "국제전문기자", [], None),
]


@pytest.mark.parametrize(("raw", "expected", "shown"), [pytest.param(r, e, s, id=i) for i, r, e, s in CASES])
def test_parse_byline(raw: str, expected: list[Reporter], shown: str | None) -> None:
    found = parse_byline(raw)
    assert list(found) == expected
    assert byline_text(found) == shown


def test_there_are_at_least_sixty_shapes() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize(("text", "expected", "rest"), [
    pytest.param("[서울=뉴시스] 박진희 기자 = 정부가 새 대책을 내놨다.", [R("박진희", "기자")], "정부가 새 대책을 내놨다.",
                 id="agency-lead"),
    pytest.param("(워싱턴=연합뉴스) 김한빛 특파원 = 미국 정부는", [R("김한빛", "특파원")], "미국 정부는", id="agency-lead-paren"),
    pytest.param("시의회가 예산을 통과시켰다. 홍길동 기자 hong@example.com", [R("홍길동", "기자")],
                 "시의회가 예산을 통과시켰다.", id="tail-with-email"),
    pytest.param("본문이다. 김진호 국제전문기자 jh@example.com", [R("김진호", "전문기자", "국제")], "본문이다.",
                 id="tail-desk"),
    pytest.param("기자회견에서 시장은 = 이렇게 말했다", [], "기자회견에서 시장은 = 이렇게 말했다", id="not-a-lead"),
    pytest.param("문의는 desk@example.com", [], "문의는 desk@example.com", id="email-without-byline"),
    pytest.param("평범한 본문.", [], "평범한 본문.", id="none"),
])
def test_byline_in_text(text: str, expected: list[Reporter], rest: str) -> None:
    found, remaining = byline_in_text(text)
    assert list(found) == expected and remaining == rest


def test_the_feeds_byline_wins_and_the_text_may_add_roles() -> None:
    declared = parse_byline("홍길동")
    assert merge_bylines(declared, parse_byline("홍길동 선임기자")) == (R("홍길동", "선임기자"),)
    assert merge_bylines(parse_byline("홍길동 기자"), parse_byline("김철수 기자")) == (R("홍길동", "기자"),)
    assert merge_bylines((), parse_byline("김철수 기자")) == (R("김철수", "기자"),)
