from __future__ import annotations

from cardops.core import i18n_check
from cardops.core.i18n import negotiate, translate


def test_every_user_visible_string_has_a_chinese_translation() -> None:
    missing = i18n_check.missing()
    assert missing == {}, f"run `cardops i18n missing --write` and translate: {missing}"


def test_browser_language_negotiation() -> None:
    assert negotiate("zh-CN,zh;q=0.9,en;q=0.8") == "zh_CN"
    assert negotiate("zh") == "zh_CN"
    assert negotiate("en-US,en;q=0.9") == "en"
    assert negotiate(None) == "zh_CN"
    assert negotiate("fr-FR") == "zh_CN"


def test_translation_with_parameters() -> None:
    assert translate("No user with id {id}.", "zh_CN", id=7) == "没有编号为 7 的用户。"
    assert translate("No user with id {id}.", "en", id=7) == "No user with id 7."
