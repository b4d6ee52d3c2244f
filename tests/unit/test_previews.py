"""make previews: the gallery page and the email screenshots (headless Chromium), for one template."""

import struct

from contenttools.previews import build
from loan_notify.vocabulary import Locale


def test_the_gallery_shows_the_sms_per_country_the_email_as_png_push_and_in_app(tmp_path):
    # WHEN the gallery is built for the zh-CN approval
    index = build(tmp_path, only=["loan.approved"], locales=[Locale.ZH_CN])
    page = index.read_text("utf-8")
    # THEN the page shows the SMS as each receiving country gets it, with its segments, encoding and template id
    assert 'id="loan.approved-zh-CN"' in page and "loan.approved-en-US" not in page
    assert "【信贷通知】王伟您好" in page and "template CN-LN-1004-ZH" in page and "回复STOP退订。" in page
    assert "<b>1 segment</b> &middot; UCS-2" in page
    # AND the push and in-app cards, and the email's headers (a critical notice: no List-Unsubscribe)
    assert "Push" in page and "In-app" in page and "No List-Unsubscribe (critical notice)" in page
    # AND the email rendered by Chromium: a PNG as wide as the email viewport, and its HTML beside it
    png = (tmp_path / "emails" / "loan.approved.zh-CN.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width == 640 and height >= 300
    assert "您的贷款已批准" in (tmp_path / "emails" / "loan.approved.zh-CN.html").read_text("utf-8")
