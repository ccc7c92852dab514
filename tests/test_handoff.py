"""The hand-off policy: when a candidate who asks for a person can be put through, and where to."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from config.settings import HandoffSettings, SettingsError, load_settings
from config.templates import TemplateError, parse_template
from dialer.handoff import recruiters_available, transfer_check, transfer_target

HOURS = HandoffSettings(sip_uri="sip:recruiters@127.0.0.1", phone="+15005550009", hours="09:00-17:00",
                        weekdays="mon,tue,wed,thu,fri", timezone="America/Chicago")
WEDNESDAY_10_CHICAGO = datetime(2030, 1, 9, 16, 0, tzinfo=timezone.utc)


def test_recruiters_hours_are_read_in_their_own_zone() -> None:
    assert recruiters_available(HOURS, WEDNESDAY_10_CHICAGO)
    assert not recruiters_available(HOURS, datetime(2030, 1, 9, 23, 30, tzinfo=timezone.utc))  # 17:30 there
    assert not recruiters_available(HOURS, datetime(2030, 1, 12, 16, 0, tzinfo=timezone.utc))  # Saturday


def test_each_channel_has_its_own_target_and_the_position_its_policy(sample_template) -> None:
    assert transfer_target(HOURS, "sip") == "sip:recruiters@127.0.0.1"
    assert transfer_target(HOURS, "twilio") == "+15005550009" and transfer_target(HOURS, "web") is None
    check = transfer_check(HOURS, sample_template, "sip", lambda: WEDNESDAY_10_CHICAGO)
    assert check is not None and check()
    callback_only = parse_template({**sample_template.to_dict(), "handoff": "callback"})
    assert transfer_check(HOURS, callback_only, "sip", lambda: WEDNESDAY_10_CHICAGO) is None
    assert transfer_check(HandoffSettings(), sample_template, "sip", lambda: WEDNESDAY_10_CHICAGO) is None
    assert callback_only.to_dict()["handoff"] == "callback"
    assert "handoff" not in sample_template.to_dict()  # the default keeps existing rubric fingerprints
    with pytest.raises(TemplateError, match="handoff"):
        parse_template({**sample_template.to_dict(), "handoff": "voicemail"})


@pytest.mark.parametrize("key, value", [("HOURS", "17:00-09:00"), ("HOURS", "9-5"), ("WEEKDAYS", "mon,funday"),
                                        ("TIMEZONE", "Mars/Olympus"), ("PHONE", "555-1234"),
                                        ("SIP_URI", "recruiters@pbx")])
def test_bad_handoff_settings_fail_naming_the_key(key: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"PHONESCREEN_HANDOFF_{key}"):
        load_settings(None, {f"PHONESCREEN_HANDOFF_{key}": value})
