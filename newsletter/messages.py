"""The words of the subscription pages and notice mails, in Korean (first) and English.

Templates get one language's table as `t`; `{site}` and other fields are filled by `str.format` in the template,
after escaping, so nothing a reader typed is ever part of a format string.
"""

from __future__ import annotations

LANGUAGES = ("ko", "en")

TEXT: dict[str, dict[str, str]] = {
    "ko": {
        "subscribe_title": "뉴스레터 구독",
        "subscribe_intro": "{site}의 새 기사와 많이 본 뉴스를 이메일로 받아 보세요.",
        "email": "이메일 주소",
        "name": "이름 (선택)",
        "categories": "받을 분야",
        "frequency": "받는 주기",
        "daily": "매일 아침",
        "weekly": "매주 월요일",
        "timezone": "시간대",
        "pause": "잠시 받지 않기",
        "subscribe_button": "구독 신청",
        "consent": "{site}의 뉴스레터를 이메일로 받는 데 동의합니다. 주소는 뉴스레터 발송에만 쓰며, 언제든 메일 아래의 "
                   "링크로 바로 수신을 거부할 수 있습니다.",
        "check_inbox_title": "메일함을 확인해 주세요",
        "check_inbox": "{email} 주소로 확인 메일을 보냈습니다. 메일의 링크를 눌러야 구독이 시작됩니다. 메일이 보이지 않으면 "
                       "스팸함을 확인해 주세요.",
        "confirmed_title": "구독이 시작되었습니다",
        "confirmed": "{email} 주소로 다음 분야의 뉴스를 보내 드립니다.",
        "preferences_link": "받을 분야와 주기 바꾸기",
        "preferences_title": "구독 설정",
        "preferences_for": "{email}의 구독 설정",
        "save": "저장",
        "saved": "저장했습니다.",
        "paused_note": "지금은 발송을 멈춰 두었습니다.",
        "unsubscribe_title": "수신 거부",
        "unsubscribe_question": "{email} 주소로 더는 뉴스레터를 받지 않으시겠습니까?",
        "unsubscribe_button": "수신 거부",
        "unsubscribed_title": "수신을 거부했습니다",
        "unsubscribed": "{email} 주소로는 더 이상 뉴스레터를 보내지 않습니다.",
        "resubscribe_button": "다시 구독하기",
        "resubscribed": "다시 구독을 시작했습니다.",
        "unsubscribe_link": "수신 거부",
        "link_title": "새 링크 받기",
        "link_intro": "구독할 때 쓴 이메일 주소를 적으면 구독 설정 링크를 다시 보내 드립니다.",
        "link_button": "링크 보내기",
        "link_sent": "{email} 주소가 구독 중이면 곧 새 링크가 담긴 메일이 도착합니다.",
        "expired_title": "링크의 유효 기간이 지났습니다",
        "expired": "보안을 위해 링크는 일정 기간만 쓸 수 있습니다. 새 링크를 받아 주세요.",
        "invalid_title": "올바르지 않은 링크입니다",
        "invalid": "링크가 잘렸거나 바뀐 것 같습니다. 메일의 링크를 다시 눌러 보거나 새 링크를 받아 주세요.",
        "gone": "이 주소의 구독 정보가 없습니다. 새로 구독해 주세요.",
        "error_csrf": "양식이 만료되었습니다. 페이지를 새로 고친 뒤 다시 보내 주세요.",
        "error_categories": "받을 분야를 하나 이상 골라 주세요.",
        "error_rate": "요청이 너무 많습니다. {minutes}분 뒤에 다시 시도해 주세요.",
        "error_rate_address": "이 주소로 한 시간 안에 이미 메일을 보냈습니다. 메일함(스팸함 포함)을 확인하시거나 {minutes}분 뒤에 "
                              "다시 시도해 주세요.",
        "error_send": "메일을 보내지 못했습니다. 잠시 뒤 다시 시도해 주세요.",
        "error_timezone": "알 수 없는 시간대입니다.",
        "error_frequency": "받는 주기를 골라 주세요.",
        "error_undeliverable": "이 주소로는 메일을 보낼 수 없습니다. 주소를 확인하시거나 다른 주소를 적어 주세요.",
        "confirm_title": "구독 확인",
        "confirm_question": "{email} 주소로 다음 분야의 {site} 뉴스레터를 받으시겠습니까?",
        "used_title": "이미 쓴 링크입니다",
        "used": "이 확인 링크는 이미 쓰였거나 더 새 링크로 바뀌었습니다. 구독하려면 다시 신청해 주세요.",
        "home": "처음으로",
        "language_switch": "English",
        # mails
        "confirm_subject": "[{site}] 뉴스레터 구독을 확인해 주세요",
        "confirm_body": "{site} 뉴스레터 구독 신청을 받았습니다. 아래 버튼을 눌러야 구독이 시작됩니다.",
        "confirm_button": "구독 확인",
        "confirm_ignore": "직접 신청하지 않으셨다면 이 메일을 무시하세요. 확인하지 않으면 아무 메일도 보내지 않습니다. "
                          "이 링크는 48시간 동안 쓸 수 있습니다.",
        "manage_subject": "[{site}] 구독 설정 링크",
        "manage_body": "이 주소는 이미 {site} 뉴스레터를 받고 있습니다. 받을 분야나 주기를 바꾸려면 아래 링크를 누르세요.",
        "why": "{site} 뉴스레터 구독 페이지에서 이 주소가 입력되어 보내는 메일입니다.",
    },
    "en": {
        "subscribe_title": "Newsletter",
        "subscribe_intro": "Get {site}'s new stories and most-read news by email.",
        "email": "Email address",
        "name": "Name (optional)",
        "categories": "Sections",
        "frequency": "How often",
        "daily": "Every morning",
        "weekly": "Every Monday",
        "timezone": "Time zone",
        "pause": "Pause for now",
        "subscribe_button": "Subscribe",
        "consent": "I agree to receive {site}'s newsletter by email. The address is used only to send it, and every "
                   "mail has a link to stop at once.",
        "check_inbox_title": "Check your inbox",
        "check_inbox": "We sent a confirmation mail to {email}. Your subscription starts when you open its link. If "
                       "you can't find it, look in the spam folder.",
        "confirmed_title": "You're subscribed",
        "confirmed": "We'll send news of these sections to {email}.",
        "preferences_link": "Change sections and frequency",
        "preferences_title": "Subscription settings",
        "preferences_for": "Settings for {email}",
        "save": "Save",
        "saved": "Saved.",
        "paused_note": "Mail is paused for now.",
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_question": "Stop sending the newsletter to {email}?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed_title": "You're unsubscribed",
        "unsubscribed": "We won't send the newsletter to {email} any more.",
        "resubscribe_button": "Subscribe again",
        "resubscribed": "You're subscribed again.",
        "unsubscribe_link": "Unsubscribe",
        "link_title": "Get a new link",
        "link_intro": "Enter the address you subscribed with and we'll mail you a new link to your settings.",
        "link_button": "Send link",
        "link_sent": "If {email} is subscribed, a mail with a new link is on its way.",
        "expired_title": "This link has expired",
        "expired": "For your safety, links only work for a while. Please ask for a new one.",
        "invalid_title": "This link doesn't work",
        "invalid": "The link looks cut off or changed. Open it from the mail again, or ask for a new one.",
        "gone": "There is no subscription for this address any more. Please subscribe again.",
        "error_csrf": "The form has expired. Reload the page and send it again.",
        "error_categories": "Choose at least one section.",
        "error_rate": "Too many requests. Please try again in {minutes} minutes.",
        "error_rate_address": "We already sent a mail to this address within the hour. Check your inbox (and spam "
                              "folder) or try again in {minutes} minutes.",
        "error_send": "We couldn't send the mail. Please try again shortly.",
        "error_timezone": "Unknown time zone.",
        "error_frequency": "Choose how often.",
        "error_undeliverable": "We can't send mail to this address. Please check it or use another one.",
        "confirm_title": "Confirm your subscription",
        "confirm_question": "Send {site}'s newsletter with these sections to {email}?",
        "used_title": "This link was used",
        "used": "This confirmation link was used already or replaced by a newer one. To subscribe, please sign up "
                "again.",
        "home": "Home",
        "language_switch": "한국어",
        "confirm_subject": "[{site}] Please confirm your subscription",
        "confirm_body": "We received a request to subscribe this address to {site}'s newsletter. Press the button to "
                        "start it.",
        "confirm_button": "Confirm subscription",
        "confirm_ignore": "If you didn't ask for this, ignore this mail: nothing will be sent unless you confirm. "
                          "The link works for 48 hours.",
        "manage_subject": "[{site}] Your subscription settings",
        "manage_body": "This address already receives {site}'s newsletter. Open the link below to change sections "
                       "or frequency.",
        "why": "You get this mail because this address was entered on {site}'s newsletter page.",
    },
}

TIMEZONES = ("Asia/Seoul", "Asia/Tokyo", "Asia/Shanghai", "Asia/Singapore", "Australia/Sydney", "Europe/London",
             "Europe/Berlin", "America/New_York", "America/Chicago", "America/Los_Angeles", "UTC")


def pick_language(requested: str | None, stored: str | None, site_language: str) -> str:
    for candidate in (requested, stored, site_language):
        if candidate in LANGUAGES:
            return candidate
    return "ko"
