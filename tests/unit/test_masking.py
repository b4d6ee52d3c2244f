from loan_notify.masking import mask_email, mask_phone


def test_phone_keeps_country_prefix_and_last_four_only():
    assert mask_phone("+8613812345678") == "+86*******5678"
    assert "1234" not in mask_phone("+8613812345678")[:-4]


def test_email_keeps_first_letter_and_domain():
    assert mask_email("ada.lovelace@example.com") == "a***@example.com"
    assert mask_email("") == ""
