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
        "editions": "받을 뉴스레터",
        "address_hidden": "(주소 숨김)",
        "ad_tag": "광고 포함: 광고성 정보 수신에 동의한 분께만 보냅니다",
        "timezone": "시간대",
        "timezone_hint": "뉴스레터는 이 시간대의 시각에 맞춰 보내 드립니다.",
        "pause": "잠시 받지 않기",
        "subscribe_button": "구독 신청",
        # 개인정보 보호법 §15②: purpose, items, retention, the right to refuse and what refusing means.
        "privacy_title": "개인정보 수집·이용 동의 (필수)",
        "privacy_items_label": "수집 항목",
        "privacy_items": "이메일 주소, 이름(선택), 받을 분야·뉴스레터·시간대·언어, 신청과 확인 시각, 접속 IP의 암호화된 값",
        "privacy_purpose_label": "수집·이용 목적",
        "privacy_purpose": "뉴스레터 발송, 구독 확인과 설정 관리, 수신 거부 처리, 동의 기록 보관",
        "privacy_retention_label": "보유·이용 기간",
        "privacy_retention": "수신 거부 또는 삭제 요청 시까지. 다만 수신을 거부한 주소로 다시 메일을 보내지 않도록 주소를 "
                             "복원할 수 없게 바꾼 값(해시)만 남겨 둡니다.",
        "privacy_refuse_label": "동의 거부 권리",
        "privacy_refuse": "동의를 거부할 권리가 있습니다. 다만 동의하지 않으시면 뉴스레터를 받으실 수 없습니다.",
        "privacy_agree": "위 내용을 확인했으며 개인정보 수집·이용에 동의합니다. (필수)",
        # 정보통신망법 §50①: advertising needs its own prior, explicit consent.
        "ads_agree": "{site}의 광고성 정보(광고가 담긴 뉴스레터) 수신에 동의합니다. (선택)",
        "ads_note": "동의하지 않아도 뉴스레터를 받으실 수 있으며, 광고가 담긴 뉴스레터만 보내지 않습니다. 동의는 구독 설정에서 "
                    "언제든 철회할 수 있습니다.",
        "ads_state_on": "광고성 정보 수신 동의: {date}",
        "privacy_policy": "개인정보 처리방침",
        "consent": "개인정보 수집·이용 동의: 항목 {items}; 목적 {purpose}; 기간 {retention}; {refuse}",
        "check_inbox_title": "메일함을 확인해 주세요",
        "check_inbox": "{email} 주소로 확인 메일을 보냈습니다. 메일의 링크를 눌러야 구독이 시작됩니다. 메일이 보이지 않으면 "
                       "스팸함을 확인해 주세요.",
        "confirmed_title": "구독이 시작되었습니다",
        "confirmed": "{email} 주소로 다음 분야의 뉴스를 보내 드립니다.",
        "preferences_link": "받을 분야와 뉴스레터 바꾸기",
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
        "error_editions": "받을 뉴스레터를 하나 이상 골라 주세요.",
        "error_privacy": "개인정보 수집·이용에 동의하셔야 구독할 수 있습니다.",
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
        "manage_body": "이 주소는 이미 {site} 뉴스레터를 받고 있습니다. 받을 분야나 뉴스레터를 바꾸려면 아래 링크를 누르세요.",
        "welcome_subject": "[{site}] 구독해 주셔서 고맙습니다",
        "welcome_intro": "{site} 뉴스레터 구독이 시작되었습니다. 다음 뉴스레터를 보내 드립니다.",
        "consent_result_subject": "[{site}] 수신 동의 처리 결과 안내",
        "consent_result": "{date}에 처리한 결과를 알려 드립니다. 전송자: {site}.\n\n개인정보 수집·이용: {privacy}\n"
                          "광고성 정보 수신: {ads}",
        "consent_given": "동의",
        "consent_refused": "동의하지 않음",
        "ads_granted_subject": "[{site}] 광고성 정보 수신 동의 처리 결과 안내",
        "ads_granted_body": "전송자 {site}은(는) {date}에 이 주소의 광고성 정보 수신 동의를 처리했습니다. 앞으로 광고가 담긴 "
                            "뉴스레터도 보내 드립니다.\n\n동의는 구독 설정에서 언제든 철회할 수 있습니다.",
        "ads_withdrawn_subject": "[{site}] 광고성 정보 수신 거부 처리 결과 안내",
        "ads_withdrawn_body": "전송자 {site}은(는) {date}에 이 주소의 광고성 정보 수신 거부(동의 철회)를 처리했습니다. 앞으로 "
                              "광고가 담긴 메일은 보내지 않습니다.",
        # 정보통신망법 §50⑧, 시행령 §62-3: the sender, the date of consent, how to keep or withdraw it.
        "reconfirm_subject": "[{site}] 광고성 정보 수신 동의 여부 확인 안내",
        "reconfirm_body": "정보통신망법 제50조 제8항에 따라 광고성 정보 수신 동의 여부를 2년마다 확인해 드립니다.\n\n"
                          "전송자: {site}\n수신 동의 날짜: {date}. 이 주소로 광고성 정보 수신에 동의하셨습니다.\n\n"
                          "계속 받으시려면 아무것도 하지 않으셔도 되며, 아래 버튼으로 동의 유지를 알려 주실 수도 있습니다. 그만 "
                          "받으시려면 구독 설정에서 광고성 정보 수신 동의를 해제해 주세요: {preferences}",
        "reconfirm_button": "수신 동의 유지",
        "keep_title": "광고성 정보 수신 동의 유지",
        "keep_question": "{site}의 광고성 정보를 계속 받으시겠습니까?",
        "kept": "광고성 정보 수신 동의를 유지했습니다. 다음 확인은 2년 뒤입니다.",
        "why": "{site} 뉴스레터 구독 페이지에서 이 주소가 입력되어 보내는 메일입니다.",
    },
    "en": {
        "subscribe_title": "Newsletter",
        "subscribe_intro": "Get {site}'s new stories and most-read news by email.",
        "email": "Email address",
        "name": "Name (optional)",
        "categories": "Sections",
        "editions": "Newsletters",
        "address_hidden": "(address hidden)",
        "ad_tag": "carries ads: sent only to readers who agree to advertising",
        "timezone": "Time zone",
        "timezone_hint": "Newsletters arrive at their hour in this time zone.",
        "pause": "Pause for now",
        "subscribe_button": "Subscribe",
        "privacy_title": "Consent to the collection and use of personal data (required)",
        "privacy_items_label": "What we collect",
        "privacy_items": "email address, name (optional), chosen sections, newsletters, time zone and language, when you "
                         "signed up and confirmed, an encrypted value of your IP address",
        "privacy_purpose_label": "Why",
        "privacy_purpose": "to send the newsletter, confirm and manage your subscription, stop mail when you ask, and "
                           "keep a record of your consent",
        "privacy_retention_label": "How long",
        "privacy_retention": "until you unsubscribe or ask us to delete it; after that we keep only an irreversible "
                             "hash of the address, so that we never mail it again",
        "privacy_refuse_label": "Your right to refuse",
        "privacy_refuse": "You may refuse; without this consent we cannot send you the newsletter.",
        "privacy_agree": "I have read the above and agree to the collection and use of my personal data. (required)",
        "ads_agree": "I agree to receive advertising from {site} (newsletters that carry ads). (optional)",
        "ads_note": "You get the newsletter without it; only newsletters with ads are left out. You can withdraw it "
                    "at any time in your settings.",
        "ads_state_on": "Advertising consent given: {date}",
        "privacy_policy": "Privacy policy",
        "consent": "Consent to the collection and use of personal data: items {items}; purpose {purpose}; retention "
                   "{retention}; {refuse}",
        "check_inbox_title": "Check your inbox",
        "check_inbox": "We sent a confirmation mail to {email}. Your subscription starts when you open its link. If "
                       "you can't find it, look in the spam folder.",
        "confirmed_title": "You're subscribed",
        "confirmed": "We'll send news of these sections to {email}.",
        "preferences_link": "Change sections and newsletters",
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
        "error_editions": "Choose at least one newsletter.",
        "error_privacy": "To subscribe, please agree to the collection and use of your personal data.",
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
                       "or newsletters.",
        "welcome_subject": "[{site}] Thank you for subscribing",
        "welcome_intro": "Your subscription to {site}'s newsletter has started. You'll get:",
        "consent_result_subject": "[{site}] The result of your consent",
        "consent_result": "What we recorded on {date}. Sender: {site}.\n\nCollection and use of personal data: "
                          "{privacy}\nAdvertising: {ads}",
        "consent_given": "agreed",
        "consent_refused": "not agreed",
        "ads_granted_subject": "[{site}] Your consent to advertising is recorded",
        "ads_granted_body": "{site} (the sender) recorded on {date} this address's consent to receive advertising. "
                            "Newsletters with ads will come too.\n\nYou can withdraw it at any time in your settings.",
        "ads_withdrawn_subject": "[{site}] Advertising stopped",
        "ads_withdrawn_body": "{site} (the sender) recorded on {date} that this address no longer receives "
                              "advertising. We won't send mail with ads to it.",
        "reconfirm_subject": "[{site}] Do you still want advertising from us?",
        "reconfirm_body": "Korean law (Act on Promotion of Information and Communications Network Utilization, Art. 50(8)) "
                          "has us check every two years that you still agree to receive advertising.\n\n"
                          "Sender: {site}\nDate of consent: {date}. This address agreed to receive advertising.\n\n"
                          "To keep receiving it, do nothing, or tell us with the button below. To stop, untick "
                          "advertising in your settings: {preferences}",
        "reconfirm_button": "Keep my consent",
        "keep_title": "Keep advertising consent",
        "keep_question": "Keep receiving advertising from {site}?",
        "kept": "Your consent to advertising is kept. We'll ask again in two years.",
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
