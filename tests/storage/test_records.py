"""`storage.records`: the one t.me link builder that sightings, origins and exports share."""

from __future__ import annotations

from storage.records import Post, Sighting, message_url


def test_message_url_uses_the_username_else_the_c_form_else_nothing():
    assert message_url(1001, "MFARussia", 10) == "https://t.me/MFARussia/10"
    assert message_url(9000000001, None, 101) == "https://t.me/c/9000000001/101"
    assert message_url(None, "MFARussia", 10) is None
    assert message_url(1001, "MFARussia", None) is None


def test_sightings_and_origins_link_the_same_way():
    sighting = Sighting(2002, None, "Embassy", 500, "2025-12-17T10:05:00+00:00", "forward")
    assert sighting.url == message_url(2002, None, 500)
    post = Post(1, "tg:1001:10", "text", (), "2025-12-17T10:00:00+00:00", "en", None, 1001, "MFARussia",
                "MFA", 10, None, "2025-12-17T10:00:00+00:00", None)
    assert post.origin_url == "https://t.me/MFARussia/10"
    hidden = Post(2, "fp:x", "text", (), "2025-12-17T10:00:00+00:00", "en", None, None, None, "Someone",
                  None, None, "2025-12-17T10:00:00+00:00", None)
    assert hidden.origin_url is None
